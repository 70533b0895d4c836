#!/bin/bash
# ganga_like Local wrapper: run one subjob's payload and record its life in a status file.
#
# Usage: wrapper.sh <workdir> <exe> [args...]
#
# Contract (the Local actor and people reading <workdir>/status rely on it):
#   * cwd of the payload is <workdir>/output (files it writes land next to its output);
#     stdin is /dev/null, stdout/stderr go to <workdir>/output/stdout and .../stderr
#     (truncated); the wrapper's own diagnostics are appended to that stderr too.
#   * <exe> and the args are passed as an argv vector: never parsed by a shell. An <exe>
#     without '/' is searched in $PATH for an executable FILE (never a shell builtin).
#   * Status lines (see ganga_like/backends/runtime/status_file.py), each one atomic O_APPEND write:
#       RUNNING      pid=<payload pid> wrapper=<this pid> marker=<$GANGA_LIKE_MARKER>
#       RUN_DONE     exit=0
#       RUN_FAILED   exit=N [signal=NAME]   (a payload ended by signal N shows as 128+N)
#       KILLED       exit=N [signal=NAME]   (this wrapper got TERM/INT/HUP and forwarded it)
#       EXEC_FAILED  exit=127 not found: ... | exit=126 not executable: ...
#       WRAPPER_ERROR exit=126 <reason>     (output directory unusable)
#   * Exit status: the payload's (127/126 when it could not be executed).
# Only bash builtins are used ($EPOCHREALTIME, printf %(...)T): forking `date` or a
# Python interpreter per subjob would cap the throughput of the Local backend.

status_path=$1/status
out_dir=$1/output
exe=$2
shift 2

# Names for 128+N exit codes (a table: `kill -l` would need a subshell, i.e. a fork).
sig_names=([1]=HUP [2]=INT [3]=QUIT [4]=ILL [5]=TRAP [6]=ABRT [7]=BUS [8]=FPE [9]=KILL
    [10]=USR1 [11]=SEGV [12]=USR2 [13]=PIPE [14]=ALRM [15]=TERM [24]=XCPU [25]=XFSZ)

# record STATE NOTE: append "<ISO time with µs and offset> STATE NOTE\n" in one write.
record() {
    local LC_ALL=C t line
    t=$EPOCHREALTIME
    printf -v line '%(%Y-%m-%dT%H:%M:%S)T.%s%(%z)T %s %s' \
        "${t%[.,]*}" "${t#*[.,]}" "${t%[.,]*}" "$1" "$2"
    line=${line//[$'\n\r']/ }
    # 4095 bytes + newline = 4096: the most an append keeps atomic.
    (( ${#line} > 4095 )) && line=${line:0:4095}
    printf '%s\n' "$line" >>"$status_path"
}

if ! cd -- "$out_dir"; then
    record WRAPPER_ERROR "exit=126 cannot enter output directory $out_dir"
    exit 126
fi
if ! exec </dev/null >stdout 2>stderr; then
    record WRAPPER_ERROR "exit=126 cannot open stdout/stderr in $out_dir"
    exit 126
fi

# Resolve the executable without forking (and never to a builtin or function).
if [[ $exe == */* ]]; then
    path=$exe
    if [[ ! -e $path ]]; then
        record EXEC_FAILED "exit=127 not found: $exe"
        printf 'ganga_like wrapper: %s: not found\n' "$exe" >&2
        exit 127
    fi
    if [[ -d $path || ! -x $path ]]; then
        record EXEC_FAILED "exit=126 not executable: $exe"
        printf 'ganga_like wrapper: %s: not executable\n' "$exe" >&2
        exit 126
    fi
else
    path=
    seen=
    IFS=: read -r -a dirs <<<"${PATH-}"
    for dir in "${dirs[@]}"; do
        candidate=${dir:-.}/$exe
        if [[ -f $candidate && -x $candidate ]]; then
            path=$candidate
            break
        fi
        [[ -e $candidate ]] && seen=$candidate
    done
    if [[ -z $path ]]; then
        if [[ -n $seen ]]; then
            record EXEC_FAILED "exit=126 not executable: $seen"
            printf 'ganga_like wrapper: %s: not executable\n' "$seen" >&2
            exit 126
        fi
        record EXEC_FAILED "exit=127 not found in PATH: $exe (PATH=${PATH-})"
        printf 'ganga_like wrapper: %s: not found in PATH\n' "$exe" >&2
        exit 127
    fi
fi

pid=
got_signal=0
# Forward a kill to the payload; then keep waiting for it (see the loop below).
trap 'got_signal=1; [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null' TERM INT HUP

"$path" "$@" &
pid=$!
# A signal that arrived between the trap and $! found no pid to forward to.
(( got_signal )) && kill -TERM "$pid" 2>/dev/null
record RUNNING "pid=$pid wrapper=$$ marker=${GANGA_LIKE_MARKER-}"

wait "$pid"
rc=$?
# A trapped signal interrupts `wait` (status >128) while the payload may still run:
# wait again until bash has really collected it (127 = already collected).
while (( got_signal == 1 )); do
    got_signal=2
    wait "$pid"
    r=$?
    (( r == 127 )) && break
    rc=$r
    [[ $got_signal == 2 ]] && break
done

note="exit=$rc"
if (( rc > 128 && rc <= 192 )); then
    note+=" signal=${sig_names[rc - 128]:-$((rc - 128))}"
fi
if (( got_signal )); then
    record KILLED "$note"
elif (( rc == 0 )); then
    record RUN_DONE "$note"
else
    record RUN_FAILED "$note"
fi
exit "$rc"
