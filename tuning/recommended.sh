# shellcheck shell=bash disable=SC2034
# The recommended host settings for msrpd at high connection counts, in one
# place: tuning/check and tuning/apply source this file. README.md explains
# each value. Sourced, never run.

# Where sysctls are read (and, by apply, written when it is not /proc/sys).
# Only tests point it elsewhere, at a copy of the tree.
TUNING_PROC_SYS=${TUNING_PROC_SYS:-/proc/sys}

# Open files per msrpd process when no --connections is given: room for about
# a million connections (every MSRP connection is one descriptor; sessions
# share connections and cost none).
TUNING_NOFILE_DEFAULT=1048576
# Descriptors msrpd needs beside its connections: listeners (one per shard
# and address), spool files being written, the control socket and its
# clients, the io_uring fds.
TUNING_NOFILE_SPARE=1024
# Locked memory (KiB). msrpd registers no buffers, and since Linux 5.12 the
# io_uring rings are charged to the memory cgroup, not to this limit; older
# kernels charge each ring (256 entries in tokio-uring: tens of KiB).
TUNING_MEMLOCK_KB=8192

# Set by tuning_plan: the open-files recommendation and the sysctl table.
TUNING_NOFILE=$TUNING_NOFILE_DEFAULT
TUNING_SYSCTLS=()

# The sysctl table, one entry per line: name|kind|recommended|note
#   min    a number; fine when the current value is at least this
#   max3   "min default max" (tcp_rmem, tcp_wmem): only max is compared
#          and raised; min and default are left alone
#   range  "low high" (ip_local_port_range): fine when it holds as many
#          ports; apply widens it, never narrows it
#   reuse  tcp_tw_reuse: 1 (all connections) is wanted; 2 is loopback only
#   zero   must be 0 (io_uring_disabled); apply leaves it to the operator
#   info   shown, never judged or changed
# $1: connections one msrpd process should hold (empty: the default plan).
tuning_plan() {
	local connections=${1:-}
	if [[ -n $connections ]]; then
		TUNING_NOFILE=$((connections + TUNING_NOFILE_SPARE))
	else
		TUNING_NOFILE=$TUNING_NOFILE_DEFAULT
	fi
	# A load generator on the same host holds the other end of every
	# connection: the system-wide count is twice the per-process one.
	local file_max=2097152 nr_open=1048576
	if ((2 * TUNING_NOFILE > file_max)); then
		file_max=$((2 * TUNING_NOFILE))
	fi
	if ((TUNING_NOFILE > nr_open)); then
		nr_open=$TUNING_NOFILE
	fi
	TUNING_SYSCTLS=(
		"fs.file-max|min|$file_max|open files of all processes together"
		"fs.nr_open|min|$nr_open|ceiling for any process's nofile hard limit"
		"net.core.somaxconn|min|4096|msrpd listens with backlog 4096 per shard; the kernel caps it at this"
		"net.ipv4.tcp_max_syn_backlog|min|4096|half-open connections per listener when syncookies are off"
		"net.ipv4.tcp_syncookies|info|1|1: a full SYN queue falls back to cookies instead of dropping"
		"net.core.netdev_max_backlog|min|16384|per-CPU input queue; loopback traffic passes through it too"
		"net.core.rmem_max|min|16777216|cap for SO_RCVBUF set by a program (msrpd sets none; tools do)"
		"net.core.wmem_max|min|16777216|cap for SO_SNDBUF set by a program (msrpd sets none; tools do)"
		"net.ipv4.tcp_rmem|max3|16777216|receive window autotuning ceiling per connection (file transfer rate)"
		"net.ipv4.tcp_wmem|max3|16777216|send buffer autotuning ceiling per connection (file transfer rate)"
		"net.ipv4.tcp_mem|info|-|pages for all TCP buffers; sized from RAM at boot"
		"net.ipv4.ip_local_port_range|range|10000 65535|ephemeral ports per source address (to one destination)"
		"net.ipv4.tcp_tw_reuse|reuse|1|reuse TIME_WAIT ports for new outgoing connections; 2 = loopback only"
		"net.netfilter.nf_conntrack_max|min|$((file_max / 2))|tracked connections when conntrack is loaded"
		"kernel.io_uring_disabled|zero|0|1: only CAP_SYS_ADMIN or kernel.io_uring_group may use io_uring; 2: nobody"
	)
}

# Prints the value of sysctl $1 (tabs as spaces), or nothing when absent.
tuning_sysctl_read() {
	local path="$TUNING_PROC_SYS/${1//.//}" value
	[[ -r $path ]] || return 0
	value=$(cat -- "$path" 2>/dev/null) || return 0
	value=${value//$'\t'/ }
	printf '%s' "$value"
}

# Whether number $1 >= number $2; "unlimited" and "infinity" are above all.
# Anything that is not a decimal number is not >= anything.
tuning_ge() {
	local a=$1 b=$2
	[[ $a == unlimited || $a == infinity ]] && return 0
	[[ $b == unlimited || $b == infinity ]] && return 1
	[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] || return 1
	while [[ $a == 0?* ]]; do a=${a#0}; done
	while [[ $b == 0?* ]]; do b=${b#0}; done
	if ((${#a} != ${#b})); then
		((${#a} > ${#b}))
		return
	fi
	if ((${#a} <= 18)); then
		((10#$a >= 10#$b))
		return
	fi
	# Past 18 digits bash arithmetic overflows: compare in two halves.
	local a_high=${a:0:${#a}-9} a_low=${a: -9} b_high=${b:0:${#b}-9} b_low=${b: -9}
	((10#$a_high > 10#$b_high || (10#$a_high == 10#$b_high && 10#$a_low >= 10#$b_low)))
}

# The value a sysctl of kind $1 should have, given current $2 and
# recommended $3: the current value where it is fine, else the smallest change
# that makes it fine (never lower than what an operator set). Prints nothing
# for kinds apply does not change.
tuning_target() {
	local kind=$1 current=$2 recommended=$3
	local -a cur rec
	case $kind in
	min)
		if tuning_ge "$current" "$recommended"; then
			printf '%s' "$current"
		else
			printf '%s' "$recommended"
		fi
		;;
	max3)
		read -r -a cur <<<"$current"
		if ((${#cur[@]} != 3)) || tuning_ge "${cur[2]}" "$recommended"; then
			printf '%s' "$current"
		else
			printf '%s %s %s' "${cur[0]}" "${cur[1]}" "$recommended"
		fi
		;;
	range)
		read -r -a cur <<<"$current"
		read -r -a rec <<<"$recommended"
		if ((${#cur[@]} != 2)); then
			printf '%s' "$current"
			return
		fi
		local low=${cur[0]} high=${cur[1]}
		((rec[0] < low)) && low=${rec[0]}
		((rec[1] > high)) && high=${rec[1]}
		printf '%s %s' "$low" "$high"
		;;
	reuse)
		printf '%s' "$recommended"
		;;
	esac
}

# The verdict for sysctl kind $1, current $2, recommended $3: ok, low, warn,
# info or n/a.
tuning_sysctl_verdict() {
	local kind=$1 current=$2 recommended=$3
	local -a cur rec
	if [[ -z $current ]]; then
		echo n/a
		return
	fi
	case $kind in
	min)
		if tuning_ge "$current" "$recommended"; then echo ok; else echo low; fi
		;;
	max3)
		read -r -a cur <<<"$current"
		if tuning_ge "${cur[2]:-}" "$recommended"; then echo ok; else echo low; fi
		;;
	range)
		read -r -a cur <<<"$current"
		read -r -a rec <<<"$recommended"
		if ((${#cur[@]} == 2 && cur[1] - cur[0] >= rec[1] - rec[0])); then
			echo ok
		else
			echo low
		fi
		;;
	reuse)
		if [[ $current == "$recommended" ]]; then echo ok; else echo low; fi
		;;
	zero)
		if [[ $current == 0 ]]; then echo ok; else echo warn; fi
		;;
	*) echo info ;;
	esac
}

# How the table shows a recommendation.
tuning_show_recommended() {
	local kind=$1 recommended=$2
	case $kind in
	min) printf '>= %s' "$recommended" ;;
	max3) printf 'max >= %s' "$recommended" ;;
	range) printf '%s (%s ports)' "$recommended" "$(tuning_range_ports "$recommended")" ;;
	*) printf '%s' "$recommended" ;;
	esac
}

# Ports in a "low high" range.
tuning_range_ports() {
	local -a r
	read -r -a r <<<"$1"
	if ((${#r[@]} == 2)); then
		echo $((r[1] - r[0] + 1))
	else
		echo 0
	fi
}

# The --shards to suggest for $1 usable CPUs: one per core given to msrpd,
# leaving one core (two past eight) for IRQs, signaling and the rest.
tuning_shards() {
	local cpus=$1
	if ((cpus <= 2)); then
		echo 1
	elif ((cpus <= 8)); then
		echo $((cpus - 1))
	else
		echo $((cpus - 2))
	fi
}

# Whether $1 is a positive decimal number.
tuning_is_count() {
	[[ $1 =~ ^[1-9][0-9]*$ ]]
}
