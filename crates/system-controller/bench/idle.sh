#!/usr/bin/env bash
# Idle CPU (% of one core) and RSS of a running process, from /proc.
# usage: idle.sh <pid> <seconds>  → cpu% (of one core) and RSS
pid=$1; secs=$2; tck=$(getconf CLK_TCK)
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
sleep "$secs"
read -r u2 s2 < <(awk '{print $14, $15}' /proc/$pid/stat)
cpu=$(echo "scale=3; 100*(($u2+$s2)-($u1+$s1))/$tck/$secs" | bc)
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
echo "cpu_percent=$cpu rss_kib=$rss peak_rss_kib=$hwm"
