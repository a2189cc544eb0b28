// Type-level example (checked by `npm run typecheck`): the generic parameters of the
// server helper flow into the callbacks, exactly as the usage guide shows with interfaces.
import { WebSocketServerHelper } from '../../src/index.ts';

interface AuthPayload {
  type: string;
  token: string;
  publicKey?: string;
}
interface UserMetadata {
  role: string;
  permissions: string[];
}

declare const server: ReturnType<typeof Bun.serve>;
declare function verifyJWT(
  token: string,
): Promise<{ id: string; role: string; permissions: string[] } | null>;

export const typed = new WebSocketServerHelper<AuthPayload, UserMetadata>({
  identifier: 'typed-ws',
  server,
  authenticateFn: async (data) => {
    const token: string = data.token; // typed as AuthPayload
    const user = await verifyJWT(token);
    if (!user) return null;
    return { userId: user.id, metadata: { role: user.role, permissions: user.permissions } };
  },
  clientConnectedFn: ({ metadata }) => {
    const role: string | undefined = metadata?.role; // UserMetadata | undefined
    void role;
  },
  handshakeFn: ({ data }) => (data.publicKey ? { serverPublicKey: 'k', salt: 's' } : null),
});

export const metadataOfFirst = (id: string): string[] | undefined =>
  typed.getClients({ id })?.metadata?.permissions;

new WebSocketServerHelper<AuthPayload, UserMetadata>({
  identifier: 'typed-ws',
  server,
  // @ts-expect-error metadata must match UserMetadata
  authenticateFn: async () => ({ userId: 'u', metadata: { role: 1 } }),
});

new WebSocketServerHelper<AuthPayload>({
  identifier: 'typed-ws',
  server,
  authenticateFn: (data) => {
    // @ts-expect-error AuthPayload has no field "password"
    return data.password ? { userId: 'u' } : null;
  },
});
