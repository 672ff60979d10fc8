/**
 * A tiny authoritative DNS server over UDP for discovery tests, so DNS discovery runs through the
 * real node:dns/promises resolver (c-ares) against answers the test sets: A, AAAA and SRV records,
 * NXDOMAIN for unknown names, NODATA for a known name without records of the asked type, and
 * `fail` modes (SERVFAIL, or no answer at all, which the resolver sees as a timeout).
 *
 * Only what c-ares sends is parsed: one question, no EDNS options honoured (an OPT record in the
 * query is ignored), answers uncompressed except the pointer to the question name.
 *
 * @example
 *   const dns = await startDnsServer(t);
 *   dns.set('workers.test', { A: ['127.0.0.1'] });
 *   const resolver = new Resolver(); resolver.setServers([dns.address]);
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { isIP } from 'node:net';
import type { TestContext } from 'node:test';

export interface DnsRecords {
  A?: string[];
  AAAA?: string[];
  SRV?: Array<{ target: string; port: number; priority?: number; weight?: number }>;
}

export interface DnsServer {
  /** '127.0.0.1:<port>', for Resolver.setServers. */
  readonly address: string;
  /** Queries received, as '<type> <name>'. */
  readonly queries: string[];
  /** Sets (replaces) the records of a name; `undefined` deletes the name (NXDOMAIN). */
  set(name: string, records: DnsRecords | undefined): void;
  /** 'ok' answers; 'servfail' answers SERVFAIL to everything; 'drop' answers nothing. */
  mode: 'ok' | 'servfail' | 'drop';
  close(): Promise<void>;
}

const TYPES: Record<number, keyof DnsRecords> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

export async function startDnsServer(t?: TestContext): Promise<DnsServer> {
  const zone = new Map<string, DnsRecords>();
  const socket: Socket = createSocket('udp4');
  const queries: string[] = [];
  const server: DnsServer = {
    address: '',
    queries,
    mode: 'ok',
    set(name, records) {
      if (records === undefined) zone.delete(name.toLowerCase());
      else zone.set(name.toLowerCase(), records);
    },
    async close() {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
  socket.on('message', (query, peer) => {
    const answer = respond(query, zone, server.mode, queries);
    if (answer !== undefined) socket.send(answer, peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  (server as { address: string }).address = `127.0.0.1:${socket.address().port}`;
  t?.after(() => server.close());
  return server;
}

function respond(query: Buffer, zone: Map<string, DnsRecords>, mode: DnsServer['mode'], log: string[]): Buffer | undefined {
  if (query.length < 12 || mode === 'drop') return undefined;
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length) {
    const length = query[offset]!;
    offset++;
    if (length === 0) break;
    labels.push(query.toString('latin1', offset, offset + length));
    offset += length;
  }
  const type = query.readUInt16BE(offset);
  const questionEnd = offset + 4;
  const name = labels.join('.').toLowerCase();
  const kind = TYPES[type];
  log.push(`${kind ?? type} ${name}`);
  const question = query.subarray(12, questionEnd);
  const records = zone.get(name);
  const rcode = mode === 'servfail' ? 2 : records === undefined ? 3 : 0;
  const answers: Buffer[] = [];
  if (rcode === 0 && kind !== undefined) {
    for (const rdata of rdataOf(kind, records!)) {
      const head = Buffer.alloc(12);
      head.writeUInt16BE(0xc00c, 0); // pointer to the question name
      head.writeUInt16BE(type, 2);
      head.writeUInt16BE(1, 4); // class IN
      head.writeUInt32BE(0, 6); // TTL 0: nothing cached anywhere
      head.writeUInt16BE(rdata.length, 10);
      answers.push(head, rdata);
    }
  }
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2); // QR, AA, RD copied, RA, rcode
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length / 2, 6);
  return Buffer.concat([header, question, ...answers]);
}

function rdataOf(kind: keyof DnsRecords, records: DnsRecords): Buffer[] {
  if (kind === 'A') return (records.A ?? []).map((ip) => Buffer.from(ip.split('.').map(Number)));
  if (kind === 'AAAA') return (records.AAAA ?? []).map(ipv6Bytes);
  return (records.SRV ?? []).map((srv) => {
    const fixed = Buffer.alloc(6);
    fixed.writeUInt16BE(srv.priority ?? 10, 0);
    fixed.writeUInt16BE(srv.weight ?? 10, 2);
    fixed.writeUInt16BE(srv.port, 4);
    return Buffer.concat([fixed, encodeName(srv.target)]);
  });
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter(Boolean).map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function ipv6Bytes(ip: string): Buffer {
  if (isIP(ip) !== 6) throw new Error(`not an IPv6 address: ${ip}`);
  const [head = '', tail = ''] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const tl = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
