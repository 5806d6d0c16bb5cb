"""Usage: python -m steps_py.nnet.model_info <nnet.conf> [--input-dim 40] [--num-pdfs 2000] [--target-params N]

Prints the model built from a conf file (conf/nnet/*.conf) and its parameter count; with --target-params, the
cell_dim whose parameter count is closest to N (for baselines at matched parameter counts).
"""
import argparse

from steps_py.common import run_main
from steps_py.nnet.config import NnetConfig
from steps_py.nnet.model import AcousticModel, cell_dim_for_params, count_params


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conf", help="model conf file, e.g. conf/nnet/lstm_2l.conf")
    parser.add_argument("--input-dim", type=int, default=40, help="feature dim (40 Fbank)")
    parser.add_argument("--num-pdfs", type=int, default=2000, help="output dim (pdfs of the GMM tree)")
    parser.add_argument("--target-params", type=int, default=None,
                        help="also print the cell_dim whose parameter count is closest to this")
    args = parser.parse_args()
    cfg = NnetConfig.from_file(args.conf)
    model = AcousticModel(cfg, args.input_dim, args.num_pdfs)
    print(model)
    print(f"{args.conf}: {model.num_params()} parameters ({cfg})")
    if args.target_params:
        dim = cell_dim_for_params(cfg, args.input_dim, args.num_pdfs, args.target_params)
        print(f"cell_dim={dim} gives {count_params(cfg, args.input_dim, args.num_pdfs, dim)} parameters "
              f"(target {args.target_params})")


if __name__ == "__main__":
    run_main(main)
