// What the README's quick start creates and other server-side fragments use without declaring.
declare const server: import('bun').Server<{ clientId: string }>;
declare const redisConnection: import('roomcast').RedisHelper;
declare const authenticateFn: import('roomcast').TWebSocketAuthenticateFn;
declare const validateRoomFn: import('roomcast').TWebSocketValidateRoomFn;
