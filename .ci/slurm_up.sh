#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on this host, without systemd, as root (CI and anyone testing
# the slurm profile; from ../shared/reference/local_slurm, tested on Debian 12):
#   munged + slurmctld + slurmd   (default: no accounting DB; poll jobs with squeue)
#   + mariadbd + slurmdbd         (WITH_SLURMDBD=1: sacct works, plugin defaults work)
# Node = $(hostname -s), partitions "cpu" (default) and "gpu", GPUS fake GPUs (see below).
# Stop with slurm_down.sh (kills by PID files only).
# The config MUST live at the compiled-in default /etc/slurm/slurm.conf: the Snakemake
# jobstep plugin strips SLURM_* variables (SLURM_CONF included) before its nested srun.
set -euo pipefail
SLURM_DIR=${SLURM_DIR:-/tmp/slurm-ci}
WITH_SLURMDBD=${WITH_SLURMDBD:-0}
NODE=$(hostname -s)
MEM_MB=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 85 / 100 ))
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
waitfor() { local n=$1; shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; "$@"; }

# 1. packages (Debian bookworm: SLURM 22.05.8, munge 0.5.15, MariaDB 10.11)
pkgs=(slurmctld slurmd slurm-client munge)
bins=(slurmctld slurmd sbatch munged)
if [ "$WITH_SLURMDBD" = 1 ]; then pkgs+=(slurmdbd mariadb-server); bins+=(slurmdbd mariadbd); fi
missing=0; for b in "${bins[@]}"; do command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || missing=1; done
if [ "$missing" = 1 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
mkdir -p "$SLURM_DIR"/{state,spool,log,run} /etc/slurm

# 2. munge (the Debian postinst creates /etc/munge/munge.key; create one if missing)
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown -R munge:munge /etc/munge; chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
if ! alive /run/munge/munged.pid; then
  runuser -u munge -- /usr/sbin/munged --force
  touch "$SLURM_DIR/run/munged.started-by-us"
fi
waitfor 50 munge -n

# 3. config
# The node declares CPU_FACTOR (default 2) times its cores and GPUS fake GPUs (default 4), with slurmd told to
# believe the config: the test DAG's jobs are short and spend most of their time starting up and waiting for the
# executor's status polls, so letting them overlap (rather than queue behind 2 cores and 1 GPU) is what shortens
# the run. CPU_FACTOR=1 GPUS=1 gives the node as slurmd detects it. RealMemory a bit lower than detected.
CPU_FACTOR=${CPU_FACTOR:-2}
GPUS=${GPUS:-4}
CPUS=$(( $(nproc) * CPU_FACTOR ))
TOPO="CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1"
if [ "$WITH_SLURMDBD" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=localci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
${ACCT}
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
# keep finished jobs visible to 'squeue --states=all' for 1 h (needed when the plugin polls with squeue)
MinJobAge=3600
SlurmctldPort=6817
SlurmdPort=6818
SlurmdParameters=config_overrides
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 ${TOPO} RealMemory=${MEM_MB} Gres=gpu:${GPUS} State=UNKNOWN
PartitionName=cpu Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${NODE} Default=NO MaxTime=INFINITE State=UP
CONF
# fake GPUs: gres/gpu needs one File= device node per GPU (without it slurmd reports 0 GPUs and the node goes
# INVAL); copies of /dev/null serve, CUDA_VISIBLE_DEVICES is set in GPU jobs
for i in $(seq 0 $((GPUS - 1))); do [ -e "/dev/svt-fake-gpu$i" ] || mknod "/dev/svt-fake-gpu$i" c 1 3; done
echo "NodeName=${NODE} Name=gpu File=/dev/svt-fake-gpu[0-$((GPUS - 1))]" > /etc/slurm/gres.conf

# 4. optional accounting: mariadbd + slurmdbd (fresh database every time)
if [ "$WITH_SLURMDBD" = 1 ]; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! alive /run/mysqld/mysqld.pid; then
    setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
      --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid \
      --bind-address=127.0.0.1 --log-error="$SLURM_DIR/log/mariadb.log" </dev/null >/dev/null 2>&1 &
    touch "$SLURM_DIR/run/mariadbd.started-by-us"
  fi
  waitfor 150 mysqladmin ping
  mysql -e "DROP DATABASE IF EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
PidFile=$SLURM_DIR/run/slurmdbd.pid
LogFile=$SLURM_DIR/log/slurmdbd.log
CONF
  chmod 600 /etc/slurm/slurmdbd.conf   # slurmdbd refuses a group/world-readable file
  alive "$SLURM_DIR/run/slurmdbd.pid" || slurmdbd
  waitfor 150 sacctmgr -n list cluster
  sacctmgr -i add cluster localci >/dev/null 2>&1 || true
fi

# 5. slurmctld + slurmd (they daemonize and write PID files); fresh state each time
if ! alive "$SLURM_DIR/run/slurmctld.pid"; then rm -rf "$SLURM_DIR"/state/*; slurmctld; fi
if ! alive "$SLURM_DIR/run/slurmd.pid"; then rm -rf "$SLURM_DIR"/spool/*; slurmd; fi
for _ in $(seq 150); do sinfo -h -o '%t' 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo
sinfo -h -o '%t' | grep -qx idle || { echo "SLURM node not idle"; tail -n 30 "$SLURM_DIR"/log/*.log; exit 1; }
