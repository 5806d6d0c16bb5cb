# Sourced by utils/nnet_stage.sh and utils/memvis_stage.sh: $grid (a name, conf/nnet/grid_<name>.txt, or the path
# of a grid file of your own) -> grid_file (its path), grid (its name: grid_foo.txt -> foo) and grid_lines (its
# model lines "<name> [<conf>] [<setting>=<value> ...]", without comments and blank lines).
grid_file=conf/nnet/grid_$grid.txt
case $grid in */*|*.txt) grid_file=$grid grid=$(basename $grid .txt); grid=${grid#grid_} ;; esac
[ -f $grid_file ] || { echo "$0: no such file $grid_file (--grid default, paper, paper_small or a file)" >&2; exit 1; }
grid_lines=$(grep -v '^ *#' $grid_file | awk 'NF')
[ -n "$grid_lines" ] || { echo "$0: $grid_file lists no model" >&2; exit 1; }
