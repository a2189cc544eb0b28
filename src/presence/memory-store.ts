import type { IPresenceMember, IPresenceStore } from './types.ts';

/** Single-instance presence: a map per room. Nothing can die without this process, so `sweep` has nothing to do. */
export class MemoryPresenceStore implements IPresenceStore {
  private readonly rooms = new Map<string, Map<string, IPresenceMember>>();

  async start(): Promise<void> {}

  async add(room: string, member: IPresenceMember): Promise<boolean> {
    let members = this.rooms.get(room);
    if (!members) {
      members = new Map();
      this.rooms.set(room, members);
    }
    const isNew = !members.has(member.clientId);
    members.set(member.clientId, member);
    return isNew;
  }

  async remove(room: string, clientId: string): Promise<boolean> {
    const members = this.rooms.get(room);
    if (!members?.delete(clientId)) return false;
    if (members.size === 0) this.rooms.delete(room);
    return true;
  }

  async list(room: string): Promise<IPresenceMember[]> {
    return [...(this.rooms.get(room)?.values() ?? [])];
  }

  async sweep(): Promise<void> {}

  async stop(): Promise<void> {
    this.rooms.clear();
  }
}
