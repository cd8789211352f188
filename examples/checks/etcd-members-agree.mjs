#!/usr/bin/env zx
// A read-only cluster check for runbook's `script` action (examples/cluster-check.yaml): every member answers,
// all report one cluster id and one leader, no alarm is raised, revisions are close; then it counts the keys
// under a prefix. Run by zx: `$`, `fs` and `echo` are globals.
//
// Its input is data, never code: $RUNBOOK_INPUT is JSON (args, params, earlier step outputs), and every value
// interpolated into `$` is quoted by zx, so a prefix like `$(touch /tmp/x)` is looked up as that literal key.
// etcdctl finds the cluster through the ETCDCTL_* variables the action sets from the inventory.

const input = JSON.parse(process.env.RUNBOOK_INPUT)
const keyPrefix = String(input.args.keyPrefix ?? '/registry/')
const maxRevisionLag = Number(input.args.maxRevisionLag ?? 1000)
const endpoints = (process.env.ETCDCTL_ENDPOINTS ?? '').split(',').filter(Boolean)

// etcdctl's JSON writes 64-bit ids as bare numbers, which JSON.parse rounds: read long ones as strings.
const parse = (text) => JSON.parse(text.replace(/([:\[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'))
const hex = (id) => BigInt(id).toString(16)

const problems = []
const st = await $`etcdctl endpoint status -w json --dial-timeout 2s`.nothrow()
const answered = st.stdout.trim() ? parse(st.stdout) : []
if (answered.length < endpoints.length) {
  const got = new Set(answered.map((a) => a.Endpoint))
  problems.push(`not answering: ${endpoints.filter((e) => !got.has(e)).join(', ')}${st.stderr.trim() ? ` (${st.stderr.trim().split('\n').at(-1)})` : ''}`)
}
const clusters = new Set(answered.map((a) => String(a.Status.header.cluster_id)))
if (clusters.size > 1) problems.push(`members report ${clusters.size} cluster ids: ${[...clusters].map(hex).join(', ')}`)
const leaders = new Set(answered.map((a) => String(a.Status.leader)))
if (leaders.size !== 1 || leaders.has('0')) problems.push(`members do not agree on one leader: ${[...leaders].map(hex).join(', ')}`)
const revisions = answered.map((a) => Number(a.Status.header.revision))
const lag = revisions.length ? Math.max(...revisions) - Math.min(...revisions) : 0
if (lag > maxRevisionLag) problems.push(`revisions differ by ${lag} (more than ${maxRevisionLag})`)

const alarms = (await $`etcdctl alarm list`.nothrow()).stdout.trim()
if (alarms) problems.push(`alarms: ${alarms.split('\n').join('; ')}`)

// etcd's range count is the number of keys in the range whatever the limit: one key comes back, the count is all
// of them (etcdctl 3.4 has no --count-only).
const counted = await $`etcdctl get ${keyPrefix} --prefix --keys-only --limit 1 -w json`
const count = Number(parse(counted.stdout).count ?? 0)

const byEndpoint = Object.fromEntries(answered.map((a) => [a.Endpoint, { memberId: hex(a.Status.header.member_id), revision: Number(a.Status.header.revision), dbSize: Number(a.Status.dbSize) }]))
fs.writeFileSync(process.env.RUNBOOK_RESULT, JSON.stringify({
  members: byEndpoint,
  leader: leaders.size === 1 ? hex([...leaders][0]) : null,
  keyPrefix,
  keysUnderPrefix: Number(count),
  problems,
}))

if (problems.length) {
  echo(`cluster check failed:\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
echo(`${answered.length} members agree: leader ${hex([...leaders][0])}, revisions within ${lag}, no alarm; ${count} keys under ${JSON.stringify(keyPrefix)}`)
