"""The dictionary (data/local/dict), the lang dir (utils/prepare_lang.sh, validate_lang.pl), n-gram language models
(Kneser-Ney training, ARPA to G.fst) and the lang dir as GMM training reads it."""
