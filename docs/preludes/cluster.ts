// The application's own values in cluster.md's fragments.
declare const clientId: string;
declare const invoice: { number: string; total: number };
declare function retryLater(invoice: unknown): void;
declare const question: string;
declare const askerId: string;
declare function tally(clientId: string, vote: unknown): void;
declare const carts: { get(id: string): Promise<{ owner: string; total: number }> };
