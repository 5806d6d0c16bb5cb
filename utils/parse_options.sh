# Kaldi-style option parsing; source it after the defaults are set:
#   stage=0; nj=4; . utils/parse_options.sh || exit 1
# "--foo-bar VALUE" (or --foo-bar=VALUE) sets the already-defined shell variable foo_bar; "--config FILE" sources
# FILE (lines like "nj=8") before the other options are applied. "--help" prints $help_message if set.
# The remaining positional arguments are left in "$@".
__parse_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "${help_message:-no help message}"; exit 0 ;;
    --config)
      [ -f "$2" ] || { echo "$0: no such config file $2" >&2; exit 1; }
      . "$2"; shift 2 ;;
    --config=*)
      __f=${1#--config=}; [ -f "$__f" ] || { echo "$0: no such config file $__f" >&2; exit 1; }
      . "$__f"; shift ;;
    --*=*)
      __name=${1%%=*}; __name=${__name#--}; __name=${__name//-/_}
      eval "[ -n \"\${$__name+x}\" ]" 2>/dev/null || { echo "$0: invalid option $1" >&2; exit 1; }
      printf -v "$__name" '%s' "${1#*=}"; shift ;;
    --*)
      __name=${1#--}; __name=${__name//-/_}
      eval "[ -n \"\${$__name+x}\" ]" 2>/dev/null || { echo "$0: invalid option $1" >&2; exit 1; }
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "$__name" '%s' "$2"; shift 2 ;;
    *) __parse_args+=("$1"); shift ;;
  esac
done
set -- "${__parse_args[@]+"${__parse_args[@]}"}"
unset __parse_args __name __f
true
