// A configured helper, as `ws` (the README's name) and `helper` (the other pages' name).
declare const helper: import('roomcast').WebSocketServerHelper;
declare const ws: import('roomcast').WebSocketServerHelper;
