#!/bin/bash
# Installs the Debian 12 packages the project builds, tests and runs with.
# Idempotent: does nothing when everything is installed. Run as root.
set -euo pipefail
packages=(
  build-essential cmake pkg-config python3
  libhdf5-dev hdf5-tools
  libopenmpi-dev openmpi-bin
  libboost-program-options-dev libhwloc-dev libzstd-dev libxxhash-dev
  libgtest-dev
  clang libclang-rt-14-dev
  # a local SLURM cluster for the tests (slurm/testing/); SLURM's pmix plugin
  # loads libpmix.so of libpmix-dev at run time
  slurmctld slurmd slurm-client munge libpmix-dev
  # real MPI simulation codes, unmodified, under the MPI layer (mpi_lammps_np4,
  # mpi_gromacs_np4), and Python's MPI bindings (mpi_python_np4)
  lammps gromacs python3-mpi4py
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
