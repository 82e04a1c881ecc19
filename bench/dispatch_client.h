/* SPDX-License-Identifier: MIT */
/*
 * The external client of the dispatch benchmark: a separate process that
 * submits tasks to tierd through its control socket, `submit` requests
 * pipelined up to the load's window, and times each from the write of its
 * request to the read of its result. Run it with disp_proc_start(&p,
 * &disp_client_ops, socket_path).
 */
#ifndef DISPATCH_CLIENT_H
#define DISPATCH_CLIENT_H

#include "dispatch_util.h"

extern const struct disp_proc_ops disp_client_ops;

#endif
