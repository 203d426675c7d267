// Attachments: what an attached program holds on to. Most are libbpf bpf_links (fd-owned, freed by the kernel
// if we die); TC filters, socket filters and mode-specific XDP go through netlink or setsockopt and have their
// own detach. Every detach is idempotent.
import os from 'node:os';
import koffi from 'koffi';
import { errorFromErrno } from './errors.ts';
import { initLibbpf, lib, OPTS, type Ptr } from './ffi.ts';

export interface Attachment {
  /** e.g. "tracepoint syscalls/sys_enter_getppid". */
  readonly description: string;
  /** The bpf_link fd, when the attachment is a BPF link (pinnable); otherwise undefined. */
  readonly linkFd: number | undefined;
  readonly attached: boolean;
  /** Detaches; safe to call twice. */
  detach(): void;
}

/** A libbpf `struct bpf_link`. */
export class BpfLink implements Attachment {
  readonly description: string;
  #ptr: Ptr | null;
  #pinned: string | undefined;

  constructor(ptr: Ptr, description: string) {
    this.#ptr = ptr;
    this.description = description;
  }

  get attached(): boolean {
    return this.#ptr !== null;
  }

  get linkFd(): number | undefined {
    return this.#ptr === null ? undefined : (lib().bpf_link__fd(this.#ptr) as number);
  }

  /** Pins the link so the program stays attached after this process exits. */
  pin(path: string): void {
    if (this.#ptr === null) throw errorFromErrno(`pin ${this.description}: link is detached`, os.constants.errno.EBADF);
    const r = lib().bpf_link__pin(this.#ptr, path) as number;
    if (r < 0) throw errorFromErrno(`pin ${this.description} at ${path}`, -r, { capability: 'CAP_BPF' });
    this.#pinned = path;
  }

  unpin(): void {
    if (this.#ptr === null || !this.#pinned) return;
    lib().bpf_link__unpin(this.#ptr);
    this.#pinned = undefined;
  }

  get pinPath(): string | undefined {
    return this.#pinned;
  }

  detach(): void {
    if (this.#ptr === null) return;
    const p = this.#ptr;
    this.#ptr = null;
    // A pinned link survives bpf_link__destroy (that only drops our fd); unpin first for a real detach.
    if (this.#pinned) lib().bpf_link__unpin(p);
    lib().bpf_link__destroy(p);
  }
}

/** A group of attachments detached together (e.g. one perf event per CPU). */
export class MultiAttachment implements Attachment {
  readonly description: string;
  readonly parts: Attachment[];
  constructor(description: string, parts: Attachment[]) {
    this.description = description;
    this.parts = parts;
  }
  get attached(): boolean {
    return this.parts.some((p) => p.attached);
  }
  get linkFd(): number | undefined {
    return undefined;
  }
  detach(): void {
    for (const p of this.parts) p.detach();
  }
}

export const TcDirection = { ingress: 1, egress: 2 } as const;
export type TcDirectionName = keyof typeof TcDirection;

// clsact qdiscs this process created (by ifindex), with the number of our TC filters still on each. One qdisc
// carries both directions, so it may be destroyed only when the last of our filters on it is detached:
// destroying it earlier silently removes the other filters too (e.g. egress when ingress is detached).
const ownedClsact = new Map<number, number>();

/**
 * A TC classifier attached on a clsact qdisc through netlink. `destroyQdisc`: the attach created the qdisc, and
 * it is removed when the last of this process's filters on it detaches.
 */
export class TcAttachment implements Attachment {
  readonly description: string;
  readonly #ifindex: number;
  readonly #direction: number;
  readonly #handle: number;
  readonly #priority: number;
  readonly #progId: number;
  #attached = true;

  constructor(o: { ifindex: number; direction: number; handle: number; priority: number; progId: number; destroyQdisc: boolean; description: string }) {
    this.#ifindex = o.ifindex;
    this.#direction = o.direction;
    this.#handle = o.handle;
    this.#priority = o.priority;
    this.#progId = o.progId;
    this.description = o.description;
    // We just created it. Keep any count left by filters that went with an earlier qdisc of ours (deleted by
    // someone else): their detach still decrements, so the count reaches 0 only with our last live filter.
    if (o.destroyQdisc && !ownedClsact.has(o.ifindex)) ownedClsact.set(o.ifindex, 0);
    const users = ownedClsact.get(o.ifindex);
    if (users !== undefined) ownedClsact.set(o.ifindex, users + 1);
  }

  get attached(): boolean {
    return this.#attached;
  }
  get linkFd(): undefined {
    return undefined;
  }
  get handle(): number {
    return this.#handle;
  }
  get priority(): number {
    return this.#priority;
  }

  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    const l = lib();
    const hook = { sz: koffi.sizeof(OPTS.tcHook), ifindex: this.#ifindex, attach_point: this.#direction, parent: 0 };
    // Filters are addressed by handle and priority: make sure that slot still holds our program, not one that
    // replaced it since (which is not ours to remove).
    const q = { sz: koffi.sizeof(OPTS.tcOpts), prog_fd: 0, flags: 0, prog_id: 0, handle: this.#handle, priority: this.#priority };
    const stillOurs = l.bpf_tc_query(hook, q) === 0 && q.prog_id === this.#progId;
    if (stillOurs) l.bpf_tc_detach(hook, { sz: koffi.sizeof(OPTS.tcOpts), prog_fd: 0, flags: 0, prog_id: 0, handle: this.#handle, priority: this.#priority });
    const users = ownedClsact.get(this.#ifindex);
    if (users === undefined) return; // not a qdisc we created (or created with destroyQdiscOnDetach: false)
    if (users > 1) {
      ownedClsact.set(this.#ifindex, users - 1);
      return;
    }
    ownedClsact.delete(this.#ifindex);
    // Our last filter on it is gone: destroying with both directions removes the clsact qdisc we created.
    l.bpf_tc_hook_destroy({ ...hook, attach_point: TcDirection.ingress | TcDirection.egress });
  }
}

const SOL_SOCKET = 1;
const SO_DETACH_BPF = 27;
const SO_COOKIE = 57;

/** The kernel's unique id of the socket behind `fd` (SO_COOKIE, Linux 4.12), or undefined if there is none. */
export function socketCookie(fd: number): bigint | undefined {
  const buf = Buffer.alloc(8);
  const len = [8];
  const r = lib().getsockopt(fd, SOL_SOCKET, SO_COOKIE, buf, len) as number;
  return r === 0 && len[0] === 8 ? buf.readBigUInt64LE(0) : undefined;
}

/** A socket filter program bound to one socket with SO_ATTACH_BPF. */
export class SocketFilterAttachment implements Attachment {
  readonly description: string;
  readonly #sock: number;
  readonly #cookie: bigint | undefined;
  #attached = true;
  /** `cookie`: socketCookie(sock) at attach, so that detach can tell whether the fd still names that socket. */
  constructor(sock: number, description: string, cookie?: bigint) {
    this.#sock = sock;
    this.description = description;
    this.#cookie = cookie;
  }
  get attached(): boolean {
    return this.#attached;
  }
  get linkFd(): undefined {
    return undefined;
  }
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    // The owner may have closed the socket (its filter went with it) and the fd number may now name another
    // socket, whose own filter we must not remove: detach only while the fd still names the same socket.
    if (this.#cookie !== undefined && socketCookie(this.#sock) !== this.#cookie) return;
    const zero = Buffer.alloc(4);
    // Without a cookie (kernels before 4.12), a closed socket shows up as EBADF here, which is harmless.
    lib().setsockopt(this.#sock, SOL_SOCKET, SO_DETACH_BPF, zero, 4);
  }
}

const XDP_FLAGS_REPLACE = 1 << 4;

/** An XDP program attached through netlink with an explicit mode (skb/drv/hw). */
export class XdpAttachment implements Attachment {
  readonly description: string;
  readonly #ifindex: number;
  readonly #flags: number;
  readonly #progFd: number;
  #attached = true;
  /** `progFd`: our program, so that detach removes it only if it is still the one attached. */
  constructor(ifindex: number, flags: number, progFd: number, description: string) {
    this.#ifindex = ifindex;
    this.#flags = flags;
    this.#progFd = progFd;
    this.description = description;
  }
  get attached(): boolean {
    return this.#attached;
  }
  get linkFd(): undefined {
    return undefined;
  }
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    // REPLACE + old_prog_fd: the kernel refuses (EEXIST) if another program replaced ours meanwhile.
    initLibbpf().bpf_xdp_detach(this.#ifindex, this.#flags | XDP_FLAGS_REPLACE, { sz: koffi.sizeof(OPTS.xdpAttach), old_prog_fd: this.#progFd });
  }
}
