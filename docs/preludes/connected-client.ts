// A client created with createClient(url, { auth }), typed with the events the pages use.
declare const client: import('roomcast/client').RoomcastClient<
  {
    chat: { from: string; text: string };
    'invoice:ready': { number: string; total: number };
    vote: { question: string };
  },
  { chat: { text: string }; 'cart:total': { cartId: string } },
  { token: string },
  { 'cart:total': { total: number } }
>;
