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

/** A TC classifier attached on a clsact qdisc through netlink. */
export class TcAttachment implements Attachment {
  readonly description: string;
  readonly #ifindex: number;
  readonly #direction: number;
  readonly #handle: number;
  readonly #priority: number;
  readonly #destroyQdisc: boolean;
  #attached = true;

  constructor(o: { ifindex: number; direction: number; handle: number; priority: number; destroyQdisc: boolean; description: string }) {
    this.#ifindex = o.ifindex;
    this.#direction = o.direction;
    this.#handle = o.handle;
    this.#priority = o.priority;
    this.#destroyQdisc = o.destroyQdisc;
    this.description = o.description;
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
    l.bpf_tc_detach(hook, { sz: koffi.sizeof(OPTS.tcOpts), prog_fd: 0, flags: 0, prog_id: 0, handle: this.#handle, priority: this.#priority });
    if (this.#destroyQdisc) {
      // Destroying with both directions removes the clsact qdisc we created.
      l.bpf_tc_hook_destroy({ ...hook, attach_point: TcDirection.ingress | TcDirection.egress });
    }
  }
}

const SOL_SOCKET = 1;
const SO_DETACH_BPF = 27;

/** A socket filter program bound to one socket with SO_ATTACH_BPF. */
export class SocketFilterAttachment implements Attachment {
  readonly description: string;
  readonly #sock: number;
  #attached = true;
  constructor(sock: number, description: string) {
    this.#sock = sock;
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
    const zero = Buffer.alloc(4);
    // The socket may already be closed by its owner; ignore EBADF/ENOENT.
    lib().setsockopt(this.#sock, SOL_SOCKET, SO_DETACH_BPF, zero, 4);
  }
}

/** An XDP program attached through netlink with an explicit mode (skb/drv/hw). */
export class XdpAttachment implements Attachment {
  readonly description: string;
  readonly #ifindex: number;
  readonly #flags: number;
  #attached = true;
  constructor(ifindex: number, flags: number, description: string) {
    this.#ifindex = ifindex;
    this.#flags = flags;
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
    initLibbpf().bpf_xdp_detach(this.#ifindex, this.#flags, null);
  }
}
