"""Usage: python -m steps_py.data.audio_info '<wav.scp value>'

Prints the channels, samples, rate, duration and peak of one wav.scp entry (a file or a ``cmd |`` pipe), read as
the feature stage reads it (steps_py.data.audio).
"""
import sys

import numpy as np

from steps_py.common import run_main
from steps_py.data.audio import read_wav_scp_value


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n")[0])
    audio = read_wav_scp_value(sys.argv[1])
    x = audio.samples
    print(f"{x.shape[0]} channel(s), {x.shape[1]} samples, {audio.rate} Hz, {audio.duration:.3f} s, "
          f"peak {np.abs(x).max() if x.size else 0:.0f} (int16 scale)")


if __name__ == "__main__":
    run_main(main)
