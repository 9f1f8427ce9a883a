#!/bin/bash
# Example SLURM job: `jcs reproduce` (or `jcs train`) on NODES machines with GPUS GPUs each, one
# torchrun per machine, joined by torchrun's c10d rendezvous on the first machine of the job.
# Submit from the repository root:
#   sbatch --nodes=2 --gres=gpu:4 scripts/slurm_jcs.sh --profile paper
#   sbatch --nodes=1 --gres=gpu:8 scripts/slurm_jcs.sh --profile gpu --only table5
# Arguments go to `jcs reproduce`. runs/ and results/ must be on a filesystem every node sees
# (every rank resumes from the same runs/.../checkpoint.pt); the datasets too ($JCS_DATA_DIR).
# Adapt the partition, the time limit and the environment set-up to your cluster.
#SBATCH --job-name=jcs
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --output=jcs-%j.out
#SBATCH --requeue
set -euo pipefail

GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi --list-gpus | wc -l)}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${PORT:-29500}
export JCS_DATA_DIR=${JCS_DATA_DIR:-$PWD/data}
export JCS_QUIET=1
PYTHON=${PYTHON:-.venv/bin/python}

# One torchrun per node (srun starts one task per node); each starts GPUS_PER_NODE processes.
# A requeued or restarted job resumes every run from its last checkpoint (`jcs reproduce` always
# resumes; finished runs are skipped).
srun "$PYTHON" -m torch.distributed.run \
    --nnodes "$SLURM_JOB_NUM_NODES" \
    --nproc_per_node "$GPUS_PER_NODE" \
    --rdzv-id "$SLURM_JOB_ID" \
    --rdzv-backend c10d \
    --rdzv-endpoint "$HEAD_NODE:$PORT" \
    -m jcs.cli reproduce "$@"
