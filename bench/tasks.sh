#!/usr/bin/env bash
# Task throughput through RabbitMQ: forge's end-to-end no-op tasks next to raw lapin publish +
# consume with confirms, in the same run. Needs a store and a broker:
#   bench/tasks.sh [mongodb-uri] [amqp-url] [tasks]
set -euo pipefail
cd "$(dirname "$0")/.."
uri=${1:-mongodb://127.0.0.1:27017/}
amqp=${2:-amqp://guest:guest@127.0.0.1:5672/%2f}
n=${3:-50000}
cargo build --release -q -p forge-tasks --example task_throughput
for run in 1 2 3; do
  echo "run $run:"
  ./target/release/examples/task_throughput "$uri" "$amqp" "$n"
done
