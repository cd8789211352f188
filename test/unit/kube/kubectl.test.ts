/** Pure parts of the kubectl runner: node readiness, failing health checks, and no credentials in messages. */
import { describe, expect, it } from 'vitest';
import { failedHealthChecks, kubectlArgs, nodesFromJson, scrub, shortStderr } from '../../../src/kube/kubectl.ts';

describe('kubectl helpers', () => {
  it('reads node readiness from get nodes -o json', () => {
    const list = {
      items: [
        { metadata: { name: 'a' }, status: { conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status: 'True' }] } },
        { metadata: { name: 'b' }, status: { conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown' }] } },
        { metadata: { name: 'c' }, status: {} },
      ],
    };
    expect(nodesFromJson(JSON.stringify(list))).toEqual([
      { name: 'a', ready: true },
      { name: 'b', ready: false, reason: 'Ready=Unknown (NodeStatusUnknown)' },
      { name: 'c', ready: false, reason: 'no Ready condition' },
    ]);
    expect(() => nodesFromJson('{"kind":"Status"}')).toThrow(/no items/);
  });

  it('picks the failing checks out of a readyz error as kubectl quotes it', () => {
    const stderr = 'Error from server (InternalError): an error on the server ("[+]ping ok\\n[+]log ok\\n[-]etcd failed: reason withheld\\n[+]informer-sync ok\\nreadyz check failed") has prevented the request from succeeding';
    expect(failedHealthChecks(stderr)).toEqual(['[-]etcd failed: reason withheld']);
    expect(failedHealthChecks('Unable to connect to the server: dial tcp 127.0.0.1:1: connect: connection refused')).toEqual([]);
  });

  it('never lets a credential through', () => {
    const text = [
      'I1124 10:00:00.000000   123 round_trippers.go:466] curl -v -XGET  -H "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.payload.sig" https://10.0.0.1:6443/readyz',
      'token: abcdef.0123456789abcdef',
      'client-key-data: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t',
      'https://admin:hunter2@10.0.0.1:6443',
    ].join('\n');
    const out = `${scrub(text)}\n${shortStderr(text, 2000)}`;
    for (const secret of ['eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ', 'abcdef.0123456789abcdef', 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t', 'hunter2']) expect(out).not.toContain(secret);
    expect(shortStderr(text, 2000)).not.toMatch(/^I1124/);
  });

  it('passes kubeconfig and context as separate argv words', () => {
    expect(kubectlArgs({ kubeconfig: '/k/config with space', context: 'prod', requestTimeoutMs: 2500 })).toEqual([
      '--kubeconfig', '/k/config with space', '--context', 'prod', '--request-timeout=3s',
    ]);
  });
});
