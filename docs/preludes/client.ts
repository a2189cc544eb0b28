// Client-side fragments: the URL, the credentials and the page's own functions.
declare const url: string;
declare const token: string;
declare const auth: { token: string };
declare function show(...values: unknown[]): void;
declare function hide(...values: unknown[]): void;
declare function toast(text: string): void;
declare function reloadRoom(room: string): void;
declare function saveLocally(value: unknown): Promise<void>;
declare function askTheUser(question: string): Promise<string>;
declare function pickInstance(attempt: number, previous?: string): string;
