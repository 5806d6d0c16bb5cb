# The log lines and the stage times of a recipe's run.sh; source it before utils/parse_options.sh (the table
# names the options run.sh was given):
#   . ./utils/stage_log.sh
#   log "message"                 a line "<date> (run.sh:<line>:<function>) message"
#   begin_stage N "description"   logs "Stage N: description" and times the stage until the next begin_stage
#   begin_stage install "..."     the same for a step outside the numbered stages
# When run.sh ends (also on an error), the time of every stage it ran is printed as a table and written to
# exp/stage_times.txt (the last run's; "failed" marks the stage that stopped it).
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

__stage_rows=()
__stage_current=
__stage_t0=$SECONDS
__stage_run_t0=$SECONDS

__minutes() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 60 }'; }

__stage_close() {  # [status]: the row of the stage that is running, if one is
  [ -n "$__stage_current" ] || return 0
  local note=
  [ "${1:-0}" -eq 0 ] || note="  (failed)"
  local t=$(( SECONDS - __stage_t0 ))
  __stage_rows+=("$(printf '%-60s %6d s %6s min%s' "$__stage_current" $t "$(__minutes $t)" "$note")")
  __stage_current=
}

begin_stage() {  # <N> <description>, or <name> <description> for a step outside the numbered stages
  __stage_close
  local what="$1: ${*:2}"
  [[ $1 =~ ^[0-9]+$ ]] && what="Stage $what"
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $what"
  __stage_current=${what:0:60}
  __stage_t0=$SECONDS
}

__stage_table() {
  local status=$?
  __stage_close $status
  [ ${#__stage_rows[@]} -gt 0 ] || return $status
  {
    echo "Stage times of ./run.sh $__stage_args ($(date '+%Y-%m-%d %H:%M')):"
    printf '  %s\n' "${__stage_rows[@]}"
    local t=$(( SECONDS - __stage_run_t0 ))
    printf '  %-60s %6d s %6s min\n' "total" $t "$(__minutes $t)"
  } > .stage_times.tmp
  cat .stage_times.tmp
  mkdir -p exp && mv .stage_times.tmp exp/stage_times.txt
  return $status
}
__stage_args="$*"
trap __stage_table EXIT
