// The event maps of docs/client.md's "Sharing the event map" (the module both sides import).
interface ClientToServer {
  'cart:add': { sku: string; quantity: number };
}
interface ServerToClient {
  'cart:changed': { total: number };
}
interface Replies {
  'cart:add': { total: number };
}
