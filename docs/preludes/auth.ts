// Your own credential checks, which the examples call.
declare function verify(token: string): Promise<{ id: string; role: string } | null>;
declare function lookUpSession(token: string): Promise<{ id: string; role: string } | null>;
