#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""scripts/check-layers.py on small made-up trees: each rule it enforces is
broken once and must be named; the allowed shapes must pass."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, '..', 'scripts', 'check-layers.py')

# A tree that follows every rule: supervisor modules in one direction,
# a private X_internal.h, common/ on include/, agentd/ and tools/ on common/.
CLEAN = {
    'include/tier/ring.h': '',
    'common/fdio.h': '#include "tier/ring.h"\n',
    'common/fdio.c': '#include "fdio.h"\n#include <tier/ring.h>\n#include <stdio.h>\n',
    'supervisor/loop.h': '#include "common/fdio.h"\n',
    'supervisor/loop.c': '#include "loop.h"\n',
    'supervisor/ctl.h': '#include "loop.h"\n',
    'supervisor/ctl_internal.h': '#include "ctl.h"\n',
    'supervisor/ctl.c': '#include "ctl.h"\n#include "ctl_internal.h"\n',
    'supervisor/ctl_queue.c': '#include "ctl_internal.h"\n',
    'supervisor/cgroup/cgroup.h': '#include "../loop.h"\n',
    'supervisor/cgroup/cgroup.c': '#include "cgroup.h"\n',
    'supervisor/cgroup/tools/cgtest.c': '#include "../cgroup.h"\n',
    'agentd/agd.c': '#include "common/fdio.h"\n#include "tier/ring.h"\n#include "skel.h"\n',
    'tools/tierctl/main.c': '#include "../../common/fdio.h"\n',
    'bpf/probe.c': '#include "probe.skel.h"\n#include <bpf/libbpf.h>\n',
}


def run(tree, *args):
    with tempfile.TemporaryDirectory() as root:
        for path, text in tree.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), 'w') as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECK, *args, root], capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout + p.stderr


def with_(files):
    tree = dict(CLEAN)
    tree.update(files)
    return tree


class CheckLayers(unittest.TestCase):
    def test_should_pass_a_tree_that_follows_every_rule(self):
        code, out = run(CLEAN, '--strict-cycles')
        self.assertEqual(code, 0, out)
        self.assertIn('0 include cycle(s), 0 layer violation(s)', out)

    def test_should_fail_agentd_including_supervisor_relatively(self):
        code, out = run(with_({'agentd/bad.c':
                               '#include <stdio.h>\n#include "../supervisor/loop.h"\n'}))
        self.assertEqual(code, 1, out)
        self.assertIn('agentd/bad.c:2: includes "../supervisor/loop.h" (supervisor/loop.h): '
                      'agentd/ must not include supervisor/', out)

    def test_should_fail_tools_including_supervisor_from_the_root(self):
        code, out = run(with_({'tools/tierctl/x.c': '#include "supervisor/ctl.h"\n'}))
        self.assertEqual(code, 1, out)
        self.assertIn('tools/tierctl/x.c:1: includes "supervisor/ctl.h"', out)

    def test_should_fail_bpf_including_supervisor_with_angle_brackets(self):
        code, out = run(with_({'bpf/probe.h': '#include <supervisor/loop.h>\n'}))
        self.assertEqual(code, 1, out)
        self.assertIn('bpf/probe.h:1: includes "supervisor/loop.h"', out)
        self.assertIn('bpf/ must not include supervisor/', out)

    def test_should_fail_common_including_supervisor_or_agentd(self):
        code, out = run(with_({'common/a.c': '#include "../supervisor/loop.h"\n',
                              'common/b.h': '#include "agentd/agd.c"\n'}))
        self.assertEqual(code, 1, out)
        self.assertIn('common/a.c:1: includes "../supervisor/loop.h" (supervisor/loop.h): '
                      'common/ includes only common/ and include/', out)
        self.assertIn('common/b.h:1: includes "agentd/agd.c"', out)
        self.assertIn('2 layer violation(s)', out)

    def test_should_report_a_cycle_of_two_modules_with_its_include_lines(self):
        code, out = run(with_({'supervisor/loop.c': '#include "loop.h"\n#include "ctl.h"\n',
                              'supervisor/ctl.h': '#include "loop.h"\n'}))
        self.assertEqual(code, 0, 'cycles are reported, not failed, by default: ' + out)
        self.assertIn('include cycle among 2 supervisor modules: ctl loop', out)
        self.assertIn('ctl -> loop  (supervisor/ctl.h:1)', out)
        self.assertIn('loop -> ctl  (supervisor/loop.c:2)', out)
        code, out = run(with_({'supervisor/loop.c': '#include "loop.h"\n#include "ctl.h"\n'}),
                        '--strict-cycles')
        self.assertEqual(code, 1, out)

    def test_should_name_a_shortest_path_around_a_longer_cycle(self):
        code, out = run(with_({'supervisor/a.h': '#include "b.h"\n', 'supervisor/b.h': '',
                              'supervisor/b.c': '#include "cgroup/cgroup.h"\n',
                              'supervisor/cgroup/cgroup.c':
                              '#include "cgroup.h"\n#include "../a.h"\n'}),
                        '--strict-cycles')
        self.assertEqual(code, 1, out)
        self.assertIn('include cycle among 3 supervisor modules: a b cgroup/cgroup', out)
        self.assertIn('e.g. a -> b -> cgroup/cgroup -> a', out)

    def test_should_not_count_a_module_or_its_private_half_as_a_cycle(self):
        # ctl.c <-> ctl.h and ctl.c <-> ctl_internal.h -> ctl.h: one module.
        code, out = run(with_({'supervisor/ctl.h':
                               '#include "loop.h"\n#include "ctl_internal.h"\n'}),
                        '--strict-cycles')
        self.assertEqual(code, 0, out)
        self.assertIn('0 include cycle(s)', out)

    def test_should_see_a_cycle_through_the_files_of_a_subfolder_module(self):
        # inc/chan.c is inc/inc.h's (it includes inc/internal.h): inc <-> agent.
        code, out = run(with_({'supervisor/inc/inc.h': '', 'supervisor/inc/internal.h':
                               '#include "inc.h"\n', 'supervisor/inc/chan.c':
                               '#include "internal.h"\n#include "../agent.h"\n',
                               'supervisor/agent.h': '#include "inc/inc.h"\n'}),
                        '--strict-cycles')
        self.assertEqual(code, 1, out)
        self.assertIn('include cycle among 2 supervisor modules: agent inc/inc', out)
        self.assertIn('inc/inc -> agent  (supervisor/inc/chan.c:2)', out)

    def test_should_see_a_cycle_through_a_part_without_a_header(self):
        # loop_wait.c has no loop_wait.h: it is loop's.
        code, out = run(with_({'supervisor/loop_wait.c': '#include "ctl.h"\n'}),
                        '--strict-cycles')
        self.assertEqual(code, 1, out)
        self.assertIn('loop -> ctl  (supervisor/loop_wait.c:1)', out)

    def test_should_keep_a_file_outside_a_module_apart_though_it_includes_its_private_half(self):
        # check.c uses ctl's insides but is not one of ctl's files.
        # Were it ctl's, ctl -> cg -> ctl would be a cycle.
        code, out = run(with_({'supervisor/check.c':
                               '#include "ctl_internal.h"\n#include "cg.h"\n',
                               'supervisor/cg.h': '#include "ctl.h"\n'}),
                        '--strict-cycles')
        self.assertEqual(code, 0, out)


if __name__ == '__main__':
    unittest.main(verbosity=2)
