/**
 * The host-side /bin/sh script that runs as PID 1 of the RUN's new namespaces (spawned by
 * `unshare --mount --pid --fork …`). It sets up the rootfs, then execs the command chain given as
 * its arguments, so the command itself becomes PID 1.
 *
 * Every value comes from the environment (TSB_*) or the arguments, never from the script text.
 * File descriptors: 2 is the sandbox's control channel (setup messages, and whatever the outer
 * unshare says about its child), 3 is the command's stderr; the script moves 3 onto 2 just before
 * the exec. $TSB_READY is created right before that, so the caller can tell a setup failure from
 * the command's own exit status.
 *
 * (In the source, `$\{` stands for `${`, which a template literal would interpolate.)
 *
 * Paths inside the rootfs (the working dir, extra mount targets) are resolved with symlinks
 * followed *inside* the merged tree (moby/sys/symlink FollowSymlinkInScope), so an absolute
 * symlink in the image can never make mkdir or mount touch a host path.
 */
/**
 * The shell functions of the setup (fail, resolve, mkpath), shared with the OCI runtime sandbox's
 * host script (oci.ts): `fail` exits 125 with a `tsbuild-sandbox:` message on fd 2; mkpath
 * records created paths in $TSB_CREATED.
 */
export const SCRIPT_FUNCTIONS = String.raw`fail() {
	printf 'tsbuild-sandbox: %s\n' "$*" >&2
	exit 125
}

# resolve ROOT PATH: R := PATH inside ROOT, clean and absolute, symlinks followed in scope.
resolve() {
	_rest=$2
	R=
	_n=0
	while [ -n "$_rest" ]; do
		_n=$((_n + 1))
		[ "$_n" -le 255 ] || fail "too many links in $2"
		case $_rest in
		*/*)
			_p=$\{_rest%%/*}
			_rest=$\{_rest#*/}
			;;
		*)
			_p=$_rest
			_rest=
			;;
		esac
		case $_p in
		'' | .) continue ;;
		..)
			R=$\{R%/*}
			continue
			;;
		esac
		if [ -L "$1$R/$_p" ]; then
			_t=$("$TSB_READLINK" -- "$1$R/$_p" && echo x)
			_t=$\{_t%?x}
			case $_t in /*) R= ;; esac
			_rest=$_t/$_rest
			continue
		fi
		R=$R/$_p
	done
	[ -n "$R" ] || R=/
}

# mkpath ROOT PATH KIND RECORD: create the missing components of PATH (already resolved) as
# 0755 dirs (the last one as an empty file when KIND=file); RECORD=1 lists them in $TSB_CREATED.
mkpath() {
	_rest=$\{2#/}
	_sofar=
	while [ -n "$_rest" ]; do
		case $_rest in
		*/*)
			_p=$\{_rest%%/*}
			_rest=$\{_rest#*/}
			;;
		*)
			_p=$_rest
			_rest=
			;;
		esac
		_sofar=$_sofar/$_p
		if [ -e "$1$_sofar" ] || [ -L "$1$_sofar" ]; then
			if [ -n "$_rest" ] || [ "$3" = dir ]; then
				[ -d "$1$_sofar" ] || fail "cannot mkdir $2: $_sofar is not a directory"
			fi
			continue
		fi
		if [ -z "$_rest" ] && [ "$3" = file ]; then
			: >"$1$_sofar"
		else
			"$TSB_MKDIR" -m 0755 -- "$1$_sofar"
		fi
		if [ "$4" = 1 ]; then printf '%s\000' "$_sofar" >>"$TSB_CREATED"; fi
	done
}
`.replaceAll('$\\{', '${');

export const SETUP_SCRIPT =
  String.raw`set -eu
umask 022
M=$TSB_MERGED

` +
  SCRIPT_FUNCTIONS +
  String.raw`
if [ -n "$\{TSB_PLAIN:-}" ]; then
	# A plain directory (copy snapshotter): bound, not an overlay.
	"$TSB_MOUNT" --bind -- "$TSB_PLAIN" "$M"
else
	if [ -n "$\{TSB_OVL_CWD:-}" ]; then cd "$TSB_OVL_CWD"; fi
	"$TSB_MOUNT" -t overlay -o "$TSB_OVL_DATA" overlay "$M"
fi
cd /
# runc's order: /proc and the /dev tmpfs, the device nodes, then the rest in one go.
"$TSB_MOUNT" -a -T "$TSB_FSTAB_EARLY"
if [ -n "$\{TSB_USERNS:-}" ]; then
	# In a user namespace no device node can be made: bind the host's (what runc does there).
	"$TSB_CP" -R -P --preserve=mode -- "$TSB_DEV/." "$M/dev/"
	for _n in null zero full random urandom tty; do
		: >"$M/dev/$_n"
		"$TSB_MOUNT" --bind -- "/dev/$_n" "$M/dev/$_n"
	done
else
	# The template (dirs, symlinks) plus the host's device nodes, recreated as nodes owned by root
	# with their 0666 modes (what runc mknods when not in a user namespace).
	"$TSB_CP" -R -P --preserve=mode -- "$TSB_DEV/." /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty "$M/dev/"
fi
"$TSB_MOUNT" -a -T "$TSB_FSTAB"
if [ -n "$\{TSB_IP:-}" ]; then "$TSB_IP" link set lo up; fi

i=0
while [ "$i" -lt "$\{TSB_NX:-0}" ]; do
	eval "_k=\$TSB_X$\{i}_KIND _s=\$\{TSB_X$\{i}_SRC:-} _tg=\$TSB_X$\{i}_TGT _o=\$TSB_X$\{i}_OPTS _d=\$TSB_X$\{i}_NODE"
	if [ "$_k" = overlay ]; then
		# An image's layers (RUN --mount from=...): merged aside, then its source path bound like a bind.
		eval "_st=\$TSB_X$\{i}_STAGE _ov=\$TSB_X$\{i}_OVL"
		"$TSB_MKDIR" -m 0755 -- "$_st"
		"$TSB_MOUNT" -t overlay -o "$_ov" overlay "$_st"
		resolve "$_st" "$_s"
		_s=$_st$R
		[ -e "$_s" ] || fail "mount source $R not found in the image"
		if [ -d "$_s" ]; then _d=dir; else _d=file; fi
		_k=bind
	fi
	resolve "$M" "$_tg"
	mkpath "$M" "$R" "$_d" 1
	if [ "$_k" = bind ]; then
		"$TSB_MOUNT" -o "$_o" -- "$_s" "$M$R"
	else
		"$TSB_MOUNT" -t tmpfs -o "$_o" -- tmpfs "$M$R"
	fi
	i=$((i + 1))
done

resolve "$M" "$TSB_CWD"
mkpath "$M" "$R" dir 0
if [ -n "$\{TSB_USERNS:-}" ]; then
	# uts sysctls are writable only by the initial namespace's root; sethostname(2) works.
	"$TSB_HOSTNAME_TOOL" -F "$TSB_HOSTNAME_FILE"
else
	printf '%s' "$TSB_HOSTNAME" >/proc/sys/kernel/hostname
fi
: >"$TSB_READY"
exec 2>&3 3>&-
exec "$@"
`.replaceAll('$\\{', '${');
