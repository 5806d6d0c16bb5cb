# How parallel jobs are run. run.py runs them on this machine (Kaldi's run.pl); on a Slurm cluster use e.g.
#   export train_cmd="slurm.py --mem 4G"  decode_cmd="slurm.py --mem 4G"  cuda_cmd="slurm.py --gpu 1"
export train_cmd="run.py"
export decode_cmd="run.py"
export cuda_cmd="run.py"
