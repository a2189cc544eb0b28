// Fragments written inside a BaseApplication subclass (`this` is the application); they
// end up in the body of a method; in-application.after.ts closes it.
import { WebSocketBindingKeys } from 'roomcast/core';
export function preConfigure(this: import('roomcast/core').BaseApplication): void {
