# Checks the numeric options of a recipe's run.sh when it starts; source it after utils/parse_options.sh with the
# number of the recipe's last stage:
#   . ./utils/parse_options.sh || exit 1
#   . ./utils/check_run_options.sh 9
# $stage and $stop_stage must be integers, $stage at most the last stage, $stop_stage neither below $stage nor
# below 0 (the first stage of every recipe; else no stage would run), $nj an integer of at least 1. Otherwise the
# recipe stops with exit status 1 and a line naming the option, instead of running nothing (or one job) and
# reporting success.
__last_stage=$1
__run_option_error() { echo "$0: $*" >&2; exit 1; }
for __name in stage stop_stage nj; do
  [[ ${!__name} =~ ^-?[0-9]+$ ]] || __run_option_error "--${__name//_/-} ${!__name}: not an integer"
done
[ "$stage" -le "$__last_stage" ] || __run_option_error "--stage $stage: the last stage is $__last_stage"
[ "$stop_stage" -ge "$stage" ] ||
  __run_option_error "--stop-stage $stop_stage is below --stage $stage: no stage would run"
[ "$stop_stage" -ge 0 ] || __run_option_error "--stop-stage $stop_stage: the first stage is 0"
[ "$nj" -ge 1 ] || __run_option_error "--nj $nj: the number of parallel jobs must be at least 1"
unset -f __run_option_error
unset __last_stage __name
true
