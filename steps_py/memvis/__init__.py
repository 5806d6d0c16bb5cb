"""The memory of the networks: extraction of cells and gates while decoding, the analyses of Tang et al. (2017) and
their extensions (one step each), the models compared, the paper's claims checked, and the HTML report."""
