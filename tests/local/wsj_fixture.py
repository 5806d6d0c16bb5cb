"""A small fabricated corpus laid out like the LDC WSJ discs (LDC93S6B = wsj0, LDC94S13B = wsj1), for tests.

make_wsj_tree(root) writes root/LDC93S6B and root/LDC94S13B with:
  - audio as NIST SPHERE .wv1 files with embedded shorten streams of version 1, as on the real discs (a tone sweep
    of a known number of samples made by sox, compressed by tests/shorten_encoder.py),
  - .dot transcripts beside the audio (one per speaker session, "<words> (<uttid>)" lines) using the WSJ markers
    ([noise], [<noise], [noise>], [noise/], [/noise], <word>, ~, ., escaped "I\\.", --DASH, %PERCENT, .POINT),
  - the .ndx index files where Kaldi's wsj_data_prep.sh reads them (11-13.1 and 13-34.1),
  - spkrinfo.txt files, and the WSJ1 LMs bcb20onp.z / tcb20onp.z (ARPA with a text header, written in Unix
    `compress` format by unix_compress below; gzip -dc reads it),
  - disc 11-14.1 in upper case (WSJ0/SI_ET_20/440/440C0201.WV1), as some copies of the discs are.
It also contains, on purpose: an index entry without audio (01ac0203), one whose transcript is missing from its
.dot file (01ac0201), and the excluded speaker 401 (11-2.1/wsj0/si_tr_s/401).
Returns a dict of what a correct preparation yields (see EXPECTED below).
"""
import os
import random
import subprocess

SAMPLE_RATE = 16000

# utt id -> (disc dir, path on the disc (case as written), raw .dot transcript or None, samples)
UTTS = {
    "011c0201": ("wsj0/11-1.1", "wsj0/si_tr_s/011/011c0201.wv1",
                 "[loud_breath] The company's sales rose [<door_slam] sharply ~", 12000),
    "011c0202": ("wsj0/11-1.1", "wsj0/si_tr_s/011/011c0202.wv1",
                 "I\\. B\\. M\\. introduced new computers . last week", 14400),
    "01ac0201": ("wsj0/11-1.1", "wsj0/si_tr_s/01a/01ac0201.wv1", None, 12800),
    "01ac0202": ("wsj0/11-1.1", "wsj0/si_tr_s/01a/01ac0202.wv1",
                 "<and> prices fell [phone_ring/] ten %PERCENT [/phone_ring]", 16000),
    "401c0201": ("wsj0/11-2.1", "wsj0/si_tr_s/401/401c0201.wv1", "The market was quiet", 11200),
    "440c0201": ("wsj0/11-14.1", "WSJ0/SI_ET_20/440/440C0201.WV1", "The dollar was mixed", 13600),
    "440c0202": ("wsj0/11-14.1", "WSJ0/SI_ET_20/440/440C0202.WV1", "Gold prices rose", 12000),
    "46ac0201": ("wsj1/13-2.1", "wsj1/si_tr_s/46a/46ac0201.wv1",
                 "Stocks closed higher --DASH analysts said [door_slam>]", 15200),
    "46ac0202": ("wsj1/13-2.1", "wsj1/si_tr_s/46a/46ac0202.wv1", "The market was quiet today", 12800),
    "4k0c0301": ("wsj1/13-16.1", "wsj1/si_dt_20/4k0/4k0c0301.wv1", "Bonds fell [lip_smack] in early trading",
                 14400),
    "4k0c0302": ("wsj1/13-16.1", "wsj1/si_dt_20/4k0/4k0c0302.wv1", "Interest rates rose .POINT five", 13600),
}

INDICES = {
    "wsj0/11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx": [
        ";; File: tr_s_wv1.ndx, updated 04/26/94", ";;", ";; Index for WSJ0 SI-short Sennheiser training data", ";;",
        "11_1_1:wsj0/si_tr_s/011/011c0201.wv1", "11_1_1:wsj0/si_tr_s/011/011c0202.wv1",
        "11_1_1:wsj0/si_tr_s/01a/01ac0201.wv1", "11_1_1:wsj0/si_tr_s/01a/01ac0202.wv1",
        "11_1_1:wsj0/si_tr_s/01a/01ac0203.wv1", "11_2_1:wsj0/si_tr_s/401/401c0201.wv1"],
    # the Nov'92 index lists entries without the .wv1 extension
    "wsj0/11-13.1/wsj0/doc/indices/test/nvp/si_et_20.ndx": [
        ";; si_et_20.ndx", "11_14_1:wsj0/si_et_20/440/440c0201", "11_14_1:wsj0/si_et_20/440/440c0202"],
    "wsj1/13-34.1/wsj1/doc/indices/si_tr_s.ndx": [
        ";; si_tr_s.ndx", "13_2_1:wsj1/si_tr_s/46a/46ac0201.wv1", "13_2_1:wsj1/si_tr_s/46a/46ac0202.wv1"],
    "wsj1/13-34.1/wsj1/doc/indices/h1_p0.ndx": [
        ";; h1_p0.ndx", "13_16_1:wsj1/si_dt_20/4k0/4k0c0301.wv1", "13_16_1:wsj1/si_dt_20/4k0/4k0c0302.wv1"],
}

SPKRINFO = {
    "wsj0/11-13.1/wsj0/doc/spkrinfo.txt": [";  Speaker info", ";SPKR SEX", "011  M  ...", "01A  F  ...",
                                           "440  M  ...", "401  F  ..."],
    "wsj1/13-34.1/wsj1/doc/train/spkrinfo.txt": [";; spkrinfo", "46A  F  ..."],
    "wsj1/13-34.1/wsj1/doc/dev_spok/spkrinfo.txt": [";; spkrinfo", "4K0  M  ..."],
}

EXPECTED = {
    "sets": {
        "train_si84": ["011c0201", "011c0202", "01ac0202"],
        "train_si284": ["011c0201", "011c0202", "01ac0202", "46ac0201", "46ac0202"],
        "test_eval92": ["440c0201", "440c0202"],
        "test_dev93": ["4k0c0301", "4k0c0302"],
    },
    "text": {
        "011c0201": "<NOISE> THE COMPANY'S SALES ROSE SHARPLY",
        "011c0202": "I. B. M. INTRODUCED NEW COMPUTERS LAST WEEK",
        "01ac0202": "AND PRICES FELL TEN PERCENT",
        "46ac0201": "STOCKS CLOSED HIGHER -DASH ANALYSTS SAID",
        "46ac0202": "THE MARKET WAS QUIET TODAY",
        "440c0201": "THE DOLLAR WAS MIXED",
        "440c0202": "GOLD PRICES ROSE",
        "4k0c0301": "BONDS FELL <NOISE> IN EARLY TRADING",
        "4k0c0302": "INTEREST RATES ROSE POINT FIVE",
    },
    "gender": {"011": "m", "01a": "f", "440": "m", "46a": "f", "4k0": "m"},
    "samples": {u: v[3] for u, v in UTTS.items()},
    "skipped_si84": {"no transcript": ["01ac0201"], "no audio": ["01ac0203"]},
}

LM_WORDS = ("THE COMPANY'S SALES ROSE SHARPLY I. B. M. INTRODUCED NEW COMPUTERS LAST WEEK AND PRICES FELL TEN "
            "PERCENT STOCKS CLOSED HIGHER -DASH ANALYSTS SAID MARKET WAS QUIET TODAY DOLLAR MIXED GOLD BONDS IN "
            "EARLY TRADING INTEREST RATES POINT FIVE <UNK>").split()


def unix_compress(data, max_bits=16):
    """Bytes in the format of Unix `compress` (LZW, .Z/.z): magic 1f 9d, block mode, codes of 9..max_bits bits.

    Codes are packed LSB first; when the code width grows, the codes written at the old width are padded to a
    multiple of 8 (whole groups of n_bits bytes), as the decoders (compress, gzip -d) expect.
    """
    out = bytearray(b"\x1f\x9d" + bytes([0x80 | max_bits]))
    table = {bytes([i]): i for i in range(256)}
    state = {"next": 257, "bits": 9, "buf": 0, "nbuf": 0, "group": 0, "emitted": 0}

    def put(code):
        state["buf"] |= code << state["nbuf"]
        state["nbuf"] += state["bits"]
        state["group"] += 1
        while state["nbuf"] >= 8:
            out.append(state["buf"] & 0xFF)
            state["buf"] >>= 8
            state["nbuf"] -= 8

    def emit(code):
        # the decoder widens before reading code k+1 once its table (256 + k entries) passes the largest code
        if state["bits"] < max_bits and 256 + state["emitted"] > (1 << state["bits"]) - 1:
            while state["group"] % 8:
                put(0)
            state["bits"] += 1
            state["group"] = 0
        put(code)
        state["emitted"] += 1

    w = b""
    for b in data:
        wc = w + bytes([b])
        if wc in table:
            w = wc
            continue
        emit(table[w])
        if state["next"] < (1 << max_bits):
            table[wc] = state["next"]
            state["next"] += 1
        w = bytes([b])
    if w:
        emit(table[w])
    if state["nbuf"]:
        out.append(state["buf"] & 0xFF)
    return bytes(out)


def make_arpa(order, seed=0, num_sentences=300):
    """A Kneser-Ney ARPA LM (kaldingram) of the given order over LM_WORDS, as text."""
    import io

    import kaldingram.train
    from kaldingram.train import NgramCounts
    rng = random.Random(seed)
    saved = kaldingram.train.tqdm
    kaldingram.train.tqdm = lambda iterable=None, *args, **kwargs: iterable  # no progress bars in test logs
    try:
        counts = NgramCounts(order)
        for _ in range(num_sentences):
            counts.add_raw_counts_from_line(" ".join(rng.choice(LM_WORDS) for _ in range(rng.randint(3, 9))))
        counts.cal_discounting_constants()
        counts.cal_f()
        counts.cal_bow()
        buf = io.StringIO()
        counts.print_as_arpa(fout=buf)
    finally:
        kaldingram.train.tqdm = saved
    # the LDC files start with a free-form header and separate fields with spaces
    header = f"This is a fabricated {order}-gram LM in the layout of the WSJ1 base LMs.\n\n"
    return header + buf.getvalue().replace("\t", " ")


def write_sphere(path, num_samples, freq):
    """A shorten-compressed 16-bit NIST SPHERE file (pcm,embedded-shorten-v1.1) of a tone sweep of num_samples
    samples at 16 kHz; returns the samples (int16 [num_samples])."""
    import numpy as np
    from shorten_encoder import sphere_shorten
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw = subprocess.run(["sox", "-r", str(SAMPLE_RATE), "-n", "-b", "16", "-c", "1", "-e", "signed", "-t", "raw", "-",
                          "synth", f"{num_samples}s", "sine", f"{freq}-{freq * 3}", "vol", "0.5"],
                         check=True, capture_output=True).stdout
    samples = np.frombuffer(raw, dtype="<i2")
    assert len(samples) == num_samples
    with open(path, "wb") as f:
        f.write(sphere_shorten(samples[None].astype(np.int64), rate=SAMPLE_RATE, version=1))
    return samples


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="latin-1") as f:
        f.writelines(line + "\n" for line in lines)


def make_wsj_tree(root):
    """Writes the fabricated corpus under root; returns {'wsj0': dir, 'wsj1': dir, **EXPECTED, 'audio': {utt: samples}}."""
    top = {"wsj0": os.path.join(root, "LDC93S6B"), "wsj1": os.path.join(root, "LDC94S13B")}
    dots, audio = {}, {}
    for i, (utt, (disc, path, trans, samples)) in enumerate(sorted(UTTS.items())):
        corpus, disc_name = disc.split("/")
        full = os.path.join(top[corpus], disc_name, path)
        audio[utt] = write_sphere(full, samples, 200 + 40 * i)
        stem = os.path.basename(path)[:6] + ("00.DOT" if path.isupper() else "00.dot")
        dot = os.path.join(os.path.dirname(full), stem)
        dots.setdefault(dot, [])
        if trans is not None:
            dots[dot].append(f"{trans} ({utt.upper() if path.isupper() else utt})")
    for dot, lines in dots.items():
        write_lines(dot, lines)
    for rel, lines in {**INDICES, **SPKRINFO}.items():
        corpus, rest = rel.split("/", 1)
        write_lines(os.path.join(top[corpus], rest), lines)
    base_lm = os.path.join(top["wsj1"], "13-32.1", "wsj1", "doc", "lng_modl", "base_lm")
    os.makedirs(base_lm, exist_ok=True)
    for name, order in [("bcb20onp.z", 2), ("tcb20onp.z", 3)]:
        with open(os.path.join(base_lm, name), "wb") as f:
            f.write(unix_compress(make_arpa(order).encode("latin-1")))
    return {**top, **EXPECTED, "audio": audio}
