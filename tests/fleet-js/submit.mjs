// A tierd fleet submitter in another language, from docs/fleet.md alone:
// JetStream-publish N tasks to <P>.task.tier.3 with Tierd-Type and
// Nats-Msg-Id headers, take each PubAck's seq as the task id, then read
// every result as the last message on <P>.result.<id> of the results
// stream, retrying until it exists. Prints one JSON summary line.
//
//   node submit.mjs SERVERS N [PREFIX]
import { connect, headers, StringCodec } from "nats";

const [servers, nArg, prefix = "tierd"] = process.argv.slice(2);
const n = parseInt(nArg || "10", 10);
const sc = StringCodec();
const nc = await connect({ servers: servers.split(","), timeout: 5000 });
const js = nc.jetstream();
const jsm = await nc.jetstreamManager();

const ids = [];
const run = Date.now();
for (let i = 0; i < n; i++) {
	const h = headers();
	h.set("Tierd-Type", "noop");
	const key = `js-${run}-${i}`;
	const pa = await js.publish(`${prefix}.task.tier.3`, sc.encode(`js task ${i}`),
		{ headers: h, msgID: key });
	ids.push(pa.seq);
}

const results = [];
const deadline = Date.now() + 60000;
for (const id of ids) {
	for (;;) {
		try {
			const m = await jsm.streams.getMessage("TIERD_RESULTS",
				{ last_by_subj: `${prefix}.result.${id}` });
			results.push(JSON.parse(sc.decode(m.data)));
			break;
		} catch (e) {
			if (Date.now() > deadline)
				throw new Error(`no result for task ${id}: ${e.message}`);
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}
await nc.close();
console.log(JSON.stringify({
	submitted: ids.length,
	results: results.length,
	ok: results.filter((r) => r.status === "ok").length,
	keyed: results.filter((r) => typeof r.key === "string" && r.key.startsWith("js-")).length,
	nodes: [...new Set(results.map((r) => r.node))],
	ids,
}));
