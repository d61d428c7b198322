"""tntest: the harness of every Python test of talknetd and talknet
(Python 3, standard library only).

A test file puts tests/lib on sys.path (make check sets PYTHONPATH too),
defines functions named test_* and ends with

    if __name__ == "__main__":
        tntest.main(globals())

main() runs the functions in source order and prints "PASS name" or
"FAIL name" (with the traceback and, for failures only, the daemon's log).
It exits 0 when all ran and passed, 1 when one failed, 77 when all skipped.

Server starts `$TALKNETD -f -l 127.0.0.1:0 ...` and waits for its
"listening on ADDR:PORT" log lines.  Client is one TCP connection that
reads whole lines and checks every line the server sends against the
framing and encoding rules of protocol.md.  Every wait has a timeout.

The modules, by concern: config (programs, timeouts, sanitizer
patterns), proto (messages and line checks), procfs (/proc), runner,
daemon (Server and its variants), client (Client and the usual steps).
Imported on demand, as they change the process: ops (operational tests;
C locale), stress (Pool; longer test limit), talknet (the talknet client
on pipes or a terminal, and the runner of tests/client).
"""

from .config import (LIFT_LIMITS, LOOPBACK, PROGRAM_TIMEOUT,
                     QUIET, SANITIZER_PATTERNS, START_TIMEOUT, STOP_TIMEOUT,
                     TALKNET, TALKNETD, TIMEOUT, sanitizer_problems,
                     sanitizer_report, tool)
from .proto import (INVALID, NOT_IDENTIFIED, ProtocolError,
                    canon, check_line, compact, disconnected, invitation,
                    joined_room, left_room, match, new_status, new_user,
                    padded_identify, public_from, req, resp, room_text_from,
                    room_user_list, text_from, user_list)
from .procfs import (all_pids, children_of, cpu_ticks, descendants_of,
                     is_spare,
                     fd_targets, is_talknetd, listening_ports,
                     memory_holds, nfds,
                     pid_alive, proc_stat, proc_status, proc_title, sanitized,
                     shm_mapped, shm_path, smaps_rollup, socket_holders,
                     socket_inodes, status_kb, tcp_table, tree_pids)
from .runner import (Skip, ctx, finish_program, main,
                     run_program, run_tests, start_program, wait_until)
from .daemon import (SSA, ActivatedServer, EnvServer,
                     FileServer, Server, control_opts, control_path,
                     free_port)
from .client import (Client, Closed, barrier, connect_users,
                     expect_nothing, identify_new, invite, join, make_room,
                     new_room, port_of, read_line, recv_ready,
                     send_some, settle)
from . import runner  # noqa: F401  (tntest.runner.TEST_TIMEOUT)
