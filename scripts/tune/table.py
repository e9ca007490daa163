"""Table of scripts/tune.sh: each recipe's real-trace gates on the tuning
containers, mean ± population standard deviation over its seeds."""
import re
import statistics as st
import sys

GATES = [
    ("OOM days as served", r"real-oom +OOM days as served: model ([0-9.]+)% vs [a-z-]+ ([0-9.]+)%"),
    ("slack at VPA upper bound's risk", r"real-slack-upper-bound .*: model ([0-9.]+)% \(limits × [0-9.]+\) vs ([0-9.]+)%"),
    ("slack at VPA target's risk", r"real-slack-target .*: model ([0-9.]+)% \(limits × [0-9.]+\) vs ([0-9.]+)%"),
    ("vs history max × k", r"real-fallback .*: model ([0-9.]+)% vs the history maximum × [0-9.]+ \(krr-simple scaled\) ([0-9.]+)%"),
    ("CPU slack at VPA's throttling", r"real-cpu .*: model ([0-9.]+)% vs ([0-9.]+)%"),
]


def main(path):
    runs = {}
    order = []
    for line in open(path):
        name, seed, hist, log = line.rstrip("\n").split("|")
        text = open(log).read()
        vals = []
        for _, pat in GATES:
            m = re.search(pat, text)
            vals.append((float(m.group(1)), float(m.group(2))) if m else None)
        key = (name, hist)
        if key not in runs:
            runs[key] = []
            order.append(key)
        runs[key].append(vals)
    print("| recipe | history | seeds | " + " | ".join(g for g, _ in GATES) + " |")
    print("|---|---|---:|" + "---|" * len(GATES))
    for key in order:
        rows = runs[key]
        cells = []
        for i in range(len(GATES)):
            got = [r[i] for r in rows if r[i] is not None]
            if not got:
                cells.append("—")
                continue
            model = [g[0] for g in got]
            ref = st.mean(g[1] for g in got)
            cells.append(f"{st.mean(model):.1f} ± {st.pstdev(model):.1f}% vs {ref:.1f}%")
        print(f"| {key[0]} | {key[1]} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
