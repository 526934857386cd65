//! Criterion benchmark of the scheduler on Karpenter's benchmark mix against the built-in
//! catalog. `capstan bench scheduling` reports cost as well; this measures time only.

use capstan::scheduling::mix::{self, Mix};
use capstan::scheduling::pool::{Limits, PoolSpec};
use capstan::scheduling::{Input, Strategy, builtin, solve};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn scheduling(c: &mut Criterion) {
    let catalog = builtin::catalog();
    let mut group = c.benchmark_group("solve");
    group.sample_size(10);
    for n in [100, 1_000, 10_000] {
        for (name, strategy) in [("cost-optimal", Strategy::CostOptimal), ("ffd", Strategy::FirstFitDecreasing)] {
            let input = Input {
                pods: mix::pods(Mix::Karpenter, n, 1),
                nodes: Vec::new(),
                daemonsets: Vec::new(),
                pools: vec![PoolSpec::named("default")],
                catalog: &catalog,
                cluster_limits: Limits::default(),
                strategy,
            };
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| b.iter(|| solve(input)));
        }
    }
    group.finish();
}

criterion_group!(benches, scheduling);
criterion_main!(benches);
