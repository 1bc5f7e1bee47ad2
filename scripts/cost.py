#!/usr/bin/env python3
"""The monthly cost table of README's "What it costs", computed from measured figures.

usage: scripts/bench cost [--throughput FILE] [--state FILE] [--sweep FILE]

Each FILE is what `scripts/bench`, `scripts/bench state` and `scripts/bench sweep`
printed; a missing one is measured first (into target/bench-output/). The metric and
alarm counts are read from src/stats.rs and template.yaml. The prices are written once,
below, with the date they were read.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# AWS list prices, us-east-1, read from the AWS Price List in October 2026
# (aws.amazon.com/lambda/pricing, /dynamodb/pricing/on-demand, /s3/pricing,
# /cloudwatch/pricing). Free tiers are left out.
PRICES_AS_OF = "October 2026"
LAMBDA_GB_SECOND_ARM = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
S3_GET = 0.0004 / 1000
S3_LIST = 0.005 / 1000
S3_REPLICATION_REQUEST = 0.005 / 1000
CLOUDWATCH_LOGS_GB = 0.50
CLOUDWATCH_METRIC_MONTH = 0.30
CLOUDWATCH_ALARM_MONTH = 0.10
CLOUDWATCH_DASHBOARD_MONTH = 3.00

# The deployment the table is for: the template's defaults.
MEMORY_GB = 512 / 1024
VCPU_AT_MB = 1769  # Lambda gives one vCPU at 1,769 MB
SWEEP_EVERY_MINUTES = 15  # the organization's setting
SWEEP_LOOKBACK_HOURS = 6
ACCOUNTS = 500
HOURS_A_MONTH = 730


def measured(kind, path):
    """The bench's output: `path`, or a fresh run saved under target/bench-output/."""
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    out_dir = os.path.join(ROOT, "target", "bench-output")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{kind}.txt")
    args = [os.path.join(ROOT, "scripts", "bench")] + ([] if kind == "throughput" else [kind])
    print(f"measuring: {' '.join(args)} > {out}", file=sys.stderr)
    with open(out, "w", encoding="utf-8") as f:
        subprocess.run(args, stdout=f, check=True, cwd=ROOT)
    with open(out, encoding="utf-8") as f:
        return f.read()


def figure(text, pattern, what):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit(f"cost: no {what} in the bench output (pattern {pattern!r})")
    return m.groups() if len(m.groups()) > 1 else m.group(1)


def metric_count():
    with open(os.path.join(ROOT, "src", "stats.rs"), encoding="utf-8") as f:
        stats = f.read()
    counters = len(re.findall(r'=> Some\("[A-Za-z]+"\)', stats))
    sums = len(re.findall(r'\("[a-z ]+", "[A-Za-z]+"\)', stats.split("SUM_METRICS", 1)[1].split(";", 1)[0]))
    return counters, sums


def alarm_counts():
    with open(os.path.join(ROOT, "template.yaml"), encoding="utf-8") as f:
        template = f.read()
    resources = re.split(r"\n  (?=[A-Za-z0-9]+:\n)", template.split("\nResources:\n", 1)[1])
    alarms = [r for r in resources if "Type: AWS::CloudWatch::Alarm" in r]
    with_queue = [r for r in alarms if re.search(r"\n    Condition: UseQueue\b", r)]
    return len(alarms), len(alarms) - len(with_queue)


def money(x):
    if x >= 1:
        return f"${x:,.2f}"
    return f"${x:.3f}" if x >= 0.01 else f"${x:.5f}"


def main(argv):
    files = {"throughput": None, "state": None, "sweep": None}
    it = iter(argv)
    for a in it:
        key = a.lstrip("-")
        if key not in files:
            sys.exit(__doc__)
        files[key] = next(it, None)
    tp = measured("throughput", files["throughput"])
    state = measured("state", files["state"])
    sweep = files["sweep"] and measured("sweep", files["sweep"])

    scan_mbps = float(figure(tp, r"^\| `scan --jobs 1`, one object \| ([0-9.]+) MB/s", "scan rate"))
    latency_ms = float(figure(tp, r"^\| object to alert published.*every rule \| median ([0-9.]+) ms", "latency"))
    object_line, metrics_line = map(float, figure(
        tp, r"^\| function log per object, every rule: .* \| ([0-9]+) bytes, ([0-9]+) bytes", "log bytes"))

    def state_row(workload):
        w, r = figure(state, rf"^\| contributions \(this version\) \| {workload} \| [^|]+ \| [0-9.]+ \| ([0-9.]+) \| ([0-9.]+) \|", f"state {workload}")
        return float(w), float(r)

    mix_w, mix_r = state_row("mix")
    hot_w, hot_r = state_row("hot")
    keycheck_w, keycheck_r = map(float, figure(
        state, r"^\| key check \| [^|]+ \| [0-9.]+ \| ([0-9.]+) \| ([0-9.]+) \|", "state key check"))

    counters, sums = metric_count()
    metrics = counters + sums
    alarms, alarms_without_queue = alarm_counts()

    million = 1e6
    # Per log object: the invocation, its run time, one GET, one marker write, its log.
    gb_seconds = latency_ms / 1000 * MEMORY_GB
    log_kb = (object_line + metrics_line) / 1000
    per_object = {
        "invocation": LAMBDA_REQUEST,
        "run time": gb_seconds * LAMBDA_GB_SECOND_ARM,
        "GET": S3_GET,
        "marker write": DYNAMODB_WRITE_UNIT,
        "log": (object_line + metrics_line) / 1e9 * CLOUDWATCH_LOGS_GB,
    }
    one_account = sum(per_object.values()) * million
    sweeps_a_month = HOURS_A_MONTH * 60 / SWEEP_EVERY_MINUTES
    marker_reads = SWEEP_LOOKBACK_HOURS * 60 / SWEEP_EVERY_MINUTES
    organization = one_account + marker_reads * DYNAMODB_READ_UNIT * million
    replication = S3_REPLICATION_REQUEST * million
    # Per GB of log: reading at the measured rate, scaled to the function's CPU share.
    mbps_in_lambda = scan_mbps * 512 / VCPU_AT_MB
    per_gb = 1000 / mbps_in_lambda * MEMORY_GB * LAMBDA_GB_SECOND_ARM
    denials = {
        name: (w * DYNAMODB_WRITE_UNIT + r * DYNAMODB_READ_UNIT) * million
        for name, (w, r) in {"mix": (mix_w, mix_r), "hot": (hot_w, hot_r),
                             "key check": (keycheck_w, keycheck_r)}.items()
    }
    fixed = metrics * CLOUDWATCH_METRIC_MONTH + alarms * CLOUDWATCH_ALARM_MONTH + CLOUDWATCH_DASHBOARD_MONTH
    fixed_without_queue = (metrics * CLOUDWATCH_METRIC_MONTH + alarms_without_queue * CLOUDWATCH_ALARM_MONTH
                           + CLOUDWATCH_DASHBOARD_MONTH)
    listings = [n * ACCOUNTS * sweeps_a_month * S3_LIST for n in (1, 3)]
    hourly_writes = ACCOUNTS * HOURS_A_MONTH * DYNAMODB_WRITE_UNIT
    sweep_run = 0.0
    if sweep:
        seconds = [float(x) for x in re.findall(r"([0-9.]+) s a sweep", sweep)] or [
            float(x) for x in re.findall(r"\b([0-9.]+) s\b", sweep)]
        if seconds:
            sweep_run = max(seconds) * sweeps_a_month * MEMORY_GB * LAMBDA_GB_SECOND_ARM
    org_fixed = [fixed + l + hourly_writes + sweep_run for l in listings]

    print(f"Prices: AWS list prices for us-east-1, as of {PRICES_AS_OF}; free tiers left out.")
    print()
    print("| monthly cost | one account | an organization of 500 accounts |")
    print("|---|---|---|")
    print(f"| per million log objects | {money(one_account)} | {money(organization)}, plus {money(replication)} of replication paid by the members |")
    print(f"| per GB of log read | {money(per_gb)} | {money(per_gb)} |")
    print(f"| per million objects that hold denials, on top | {money(denials['mix'])} (mix), {money(denials['hot'])} (hot), {money(denials['key check'])} (key check) | the same |")
    print(f"| fixed | {money(fixed_without_queue)} to {money(fixed)} | {money(org_fixed[0])} to {money(org_fixed[1])} |")
    print()
    print("How each is made up:")
    print()
    print(f"- per log object: one invocation ({money(LAMBDA_REQUEST * million)} a million), "
          f"{latency_ms:.1f} ms at {MEMORY_GB * 1024:.0f} MB ({gb_seconds:.4f} GB-s, {money(per_object['run time'] * million)}), "
          f"one GET ({money(S3_GET * million)}), one marker write ({money(DYNAMODB_WRITE_UNIT * million)}), "
          f"{log_kb:.2f} KB of log ({object_line:.0f}-byte object line and {metrics_line:.0f}-byte metrics line, "
          f"{money(per_object['log'] * million)}); an organization's sweep reads each marker {marker_reads:.0f} times "
          f"({money(marker_reads * DYNAMODB_READ_UNIT * million)})")
    print(f"- per GB: {scan_mbps:.0f} MB/s on one core is about {mbps_in_lambda:.0f} MB/s at {MEMORY_GB * 1024:.0f} MB, "
          f"{1000 / mbps_in_lambda * MEMORY_GB:.2f} GB-s per GB of log")
    print(f"- denials: write and read units per object from the state bench (mix {mix_w} and {mix_r}; hot {hot_w} and "
          f"{hot_r}; key check {keycheck_w} and {keycheck_r})")
    print(f"- fixed: {metrics} metrics ({counters} counters of src/stats.rs and {sums} sum of a summary line, "
          f"{money(metrics * CLOUDWATCH_METRIC_MONTH)}), {alarms} alarms ({alarms_without_queue} without UseQueue), "
          f"the dashboard ({money(CLOUDWATCH_DASHBOARD_MONTH)}); an organization's sweep every {SWEEP_EVERY_MINUTES} minutes "
          f"lists 1 to 3 times per account and sweep ({money(listings[0])} to {money(listings[1])}), writes each "
          f"active account's source hourly ({money(hourly_writes)})"
          + (f" and runs ({money(sweep_run)})" if sweep else " (its run time: give --sweep)"))


if __name__ == "__main__":
    main(sys.argv[1:])
