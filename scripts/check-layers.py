#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The layer rules of docs/architecture.md, checked on the #include lines
of the tree:

  (a) agentd/, bpf/ and tools/ include nothing from supervisor/;
  (b) common/ includes only common/ and include/;
  (c) no include cycle among supervisor modules larger than one module,
      a module being a .c/.h pair (supervisor/X.c and supervisor/X.h,
      subfolders too) with its private half, when its code is spread over
      several .c files: X_internal.h, X_*.c files without a header of
      their own, or internal.h with the .c files of a subfolder D/ whose
      interface is D/D.h. X depends on Y when a file of X includes Y.h.

(a) and (b) always fail the check. Cycles are printed with the include
lines that make them; they fail the check only with --strict-cycles.

An include resolves as the compiler resolves it ("..." in the including
file's folder first, then both forms in -Iinclude and -I.); what resolves
nowhere (system and generated headers such as the BPF skeleton) is outside
the tree and not checked.

usage: check-layers.py [--strict-cycles] [ROOT]
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+(?:"([^"]+)"|<([^>]+)>)')
SEARCH = ('include', '.')       # after the file's own folder, as the Makefile's -I
TOPS = ('supervisor', 'common', 'agentd', 'bpf', 'tools', 'include')


def sources(root):
    for top in TOPS:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(('.c', '.h')):
                    yield os.path.relpath(os.path.join(d, f), root)


def resolve(root, src, name, quoted):
    for base in ((os.path.dirname(src),) if quoted else ()) + SEARCH:
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(root, p)):
            return p
    return None


def includes(root, src):
    with open(os.path.join(root, src), encoding='utf-8', errors='replace') as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                name = m.group(1) or m.group(2)
                yield n, name, resolve(root, src, name, m.group(1) is not None)


def top(path):
    return path.split(os.sep, 1)[0]


def private_of(root, path):
    """The module whose private half the header at path is, or None:
    X_internal.h is X's; D/internal.h is D/D.h's (a subfolder module)."""
    base = os.path.splitext(path)[0]
    if path.endswith('_internal.h'):
        return base[:-len('_internal')]
    d = os.path.dirname(path)
    if os.path.basename(path) == 'internal.h' and \
            os.path.isfile(os.path.join(root, d, os.path.basename(d) + '.h')):
        return os.path.join(d, os.path.basename(d))
    return None


def module(root, path, incs):
    """A header is its own module unless it is a private half. A .c file
    is X's when it includes X's private half and is one of X's files (X.c
    or X_*.c beside it, any .c of a subfolder module D/), or when it is an
    X_*.c without a header of its own; else it is its own."""
    if path.endswith('.h'):
        return private_of(root, path) or os.path.splitext(path)[0]
    base = os.path.splitext(path)[0]
    for _, _, dst in incs:
        owner = dst and top(dst) == 'supervisor' and private_of(root, dst)
        if owner and os.path.dirname(owner) == os.path.dirname(path) and \
                (base == owner or base.startswith(owner + '_') or
                 os.path.basename(owner) == os.path.basename(os.path.dirname(owner))):
            return owner
    if not os.path.isfile(os.path.join(root, base + '.h')):
        # X_part.c without a header of its own implements X.h.
        parts = os.path.basename(base).split('_')
        for k in range(len(parts) - 1, 0, -1):
            owner = os.path.join(os.path.dirname(base), '_'.join(parts[:k]))
            if os.path.isfile(os.path.join(root, owner + '.h')):
                return owner
    return base


def sccs(graph):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(sorted(comp))
    return out


def shortest_cycle(graph, comp, start):
    """Breadth-first from start back to start inside comp."""
    inside = set(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w in inside and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start]


def main(argv):
    strict = '--strict-cycles' in argv
    args = [a for a in argv if a != '--strict-cycles']
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    errors = 0
    graph, why = {}, {}

    for src in sources(root):
        t = top(src)
        incs = list(includes(root, src))
        mod = module(root, src, incs) if t == 'supervisor' else None
        if mod:
            graph.setdefault(mod, set())
        for n, name, dst in incs:
            if dst is None:
                continue
            dt = top(dst)
            if t in ('agentd', 'bpf', 'tools') and dt == 'supervisor':
                print(f'{src}:{n}: includes "{name}" ({dst}): {t}/ must not include supervisor/')
                errors += 1
            if t == 'common' and dt not in ('common', 'include'):
                print(f'{src}:{n}: includes "{name}" ({dst}): '
                      'common/ includes only common/ and include/')
                errors += 1
            if mod and dt == 'supervisor' and dst.endswith('.h'):
                dep = module(root, dst, ())
                if dep != mod:
                    graph[mod].add(dep)
                    graph.setdefault(dep, set())
                    why.setdefault((mod, dep), f'{src}:{n}')

    cycles = [c for c in sccs(graph) if len(c) > 1]
    for comp in cycles:
        path = shortest_cycle(graph, comp, comp[0])
        names = [m[len('supervisor/'):] for m in comp]
        print(f'include cycle among {len(comp)} supervisor modules: {" ".join(names)}')
        print('  e.g. ' + ' -> '.join(m[len('supervisor/'):] for m in path))
        for v in comp:
            for w in sorted(graph[v] & set(comp)):
                print(f'  {v[len("supervisor/"):]} -> {w[len("supervisor/"):]}  ({why[(v, w)]})')
    note = ''
    if cycles and not strict:
        note = ' (cycles reported, not failed: --strict-cycles fails them)'
    print(f'layers: {len(graph)} supervisor modules, {len(cycles)} include cycle(s), '
          f'{errors} layer violation(s){note}')
    return 1 if errors or (strict and cycles) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
