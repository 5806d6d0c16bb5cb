"""A Kaldi lang dir (prepare_lang's output) read for GMM training and alignment: phone and word tables, the
topology, the phone lists of phones/*.int, roots and questions, the OOV word and L.fst."""
import os

from steps_py.common import InputError, require_files
from steps_py.kaldi.bindings import kaldifst, khg
from steps_py.kaldi.symbols import read_symbol_table
from steps_py.kaldi.topology import parse_topo_text


class Lang:
    """The parts of a Kaldi lang dir (prepare_lang output) that GMM training needs. Integer ids as in phones.txt."""

    def __init__(self, lang_dir):
        def path(*p):
            f = os.path.join(lang_dir, *p)
            require_files(f)
            return f

        def ints(*p):
            return [int(x) for x in open(path(*p)).read().split()]

        def int_lines(*p):
            return [[int(x) for x in line.split()] for line in open(path(*p)) if line.strip()]
        self.dir = lang_dir
        self.phones = read_symbol_table(path("phones.txt"))        # name -> id
        self.words = read_symbol_table(path("words.txt"))
        self.id2phone = {i: p for p, i in self.phones.items()}
        self.topo_text = open(path("topo")).read()
        self.topo_entries = parse_topo_text(self.topo_text)
        self.topo = khg.HmmTopology()
        self.topo.read(self.topo_text)
        self.disambig_ids = ints("phones", "disambig.int")
        self.silence_ids = ints("phones", "silence.int")
        self.optional_silence_ids = ints("phones", "optional_silence.int")
        self.context_indep_ids = ints("phones", "context_indep.int")
        self.sets = int_lines("phones", "sets.int")
        self.extra_questions = int_lines("phones", "extra_questions.int") \
            if os.path.exists(os.path.join(lang_dir, "phones", "extra_questions.int")) else []
        self.roots = []                                          # [(shared, split, [phones])]
        for n, line in enumerate(open(path("phones", "roots.int")), 1):
            f = line.split()
            if not f:
                continue
            if len(f) < 3 or f[0] not in ("shared", "not-shared") or f[1] not in ("split", "not-split"):
                raise InputError(f"{path('phones', 'roots.int')}:{n}: bad line {line.strip()!r}")
            self.roots.append((f[0] == "shared", f[1] == "split", [int(x) for x in f[2:]]))
        self.oov_id = ints("oov.int")[0]
        self._L = None

    @property
    def L(self):
        """L.fst (the lexicon without disambiguation symbols), read once."""
        if self._L is None:
            f = os.path.join(self.dir, "L.fst")
            require_files(f)
            self._L = kaldifst.StdVectorFst.read(f)
        return self._L

    def words_to_ids(self, words):
        """Word strings -> ids, mapping unknown words to the OOV id (sym2int.pl --map-oov)."""
        return [self.words.get(w, self.oov_id) for w in words]


def read_lang(lang_dir):
    """The Lang of a lang dir."""
    return Lang(lang_dir)
