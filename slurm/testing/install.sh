#!/bin/bash
# Installs what a local SLURM test cluster needs (slurmctld slurmd
# slurm-client munge libpmix-dev: Debian 12's SLURM 22.05), with the rest of
# the project's packages: scripts/install-deps.sh keeps the one list. The
# packages' own services are not used: slurm/testing/local_slurm.py starts
# daemons of its own under a state directory. Run as root.
set -euo pipefail
exec "$(cd "$(dirname "$0")/../.." && pwd)/scripts/install-deps.sh"
