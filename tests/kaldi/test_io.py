"""steps_py.kaldi.io: the ark+scp writer when the disk fills up."""
import errno
import os

import numpy as np
import pytest

from steps_py.common import NoSpaceError
from steps_py.kaldi.io import ark_scp_writer


def test_ark_scp_writer_on_a_full_disk_names_the_ark_and_removes_its_temp_files(tmp_path):
    ark, scp = tmp_path / "raw_mfcc.1.ark", tmp_path / "raw_mfcc.1.scp"
    with pytest.raises(NoSpaceError) as e:
        with ark_scp_writer(str(ark), str(scp)) as write:
            write("utt1", np.zeros((5, 13), dtype=np.float32))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(e.value) == f"cannot write {ark}: No space left on device"
    assert os.listdir(tmp_path) == []
