#!/bin/busybox sh
# /init of the vmlab guest (see vmlab/run): runs `pvlock bench`, prints the JSON on the serial
# console between markers, then powers off. Everything here is busybox.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# If the kernel found no /dev/console in the initramfs, stdout is closed until here.
exec </dev/console >/dev/console 2>&1
# Keep kernel messages (RCU stall and soft-lockup warnings are likely under TCG) off the console:
# they would land inside the JSON. `dmesg` below summarises them instead.
echo 1 >/proc/sys/kernel/printk

# Bench arguments: one per line (written by vmlab/run).
set --
while IFS= read -r a; do set -- "$@" "$a"; done </etc/pvlock-bench.args
# Its environment (`vmlab/run --env`): NAME=VALUE, one per line.
while IFS= read -r kv; do [ -n "$kv" ] && export "$kv"; done </etc/pvlock-bench.env

echo
echo "===PVLOCK-GUEST-START=== kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo), clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
echo "guest: $(tr '\n' ' ' </etc/pvlock-bench.env)pvlock bench $* --json /tmp/out.json"
echo "===PVLOCK-TABLE-BEGIN==="
# stderr to a file: the bench draws a progress bar when stderr is a terminal.
/bin/pvlock bench "$@" --json /tmp/out.json 2>/tmp/bench.err
rc=$?
echo "===PVLOCK-TABLE-END==="
if [ -s /tmp/bench.err ]; then
    echo "--- bench stderr ---"
    cat /tmp/bench.err
fi
if [ -s /tmp/out.json ]; then
    echo "===PVLOCK-JSON-BEGIN==="
    cat /tmp/out.json
    # Terminate the last line so the END marker starts a line; the checksum covers exactly the
    # lines between the markers.
    [ "$(tail -c 1 /tmp/out.json | od -An -c | tr -d ' ')" = '\n' ] || echo
    echo "===PVLOCK-JSON-END==="
    echo "===PVLOCK-JSON-MD5=== $({ cat /tmp/out.json; [ "$(tail -c 1 /tmp/out.json | od -An -c | tr -d ' ')" = '\n' ] || echo; } | md5sum | cut -d' ' -f1)"
fi
n=$(dmesg | grep -Eic 'rcu.*stall|soft lockup|hung task')
echo "guest kernel: $n RCU-stall/soft-lockup/hung-task warnings during the run"
echo "===PVLOCK-EXIT=== $rc"
sync
poweroff -f
# poweroff -f does not return; if it did, exiting init panics and panic=-1 + -no-reboot stops QEMU.
sleep 5
exit "$rc"
