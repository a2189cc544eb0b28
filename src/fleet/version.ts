/** roomcast's version, announced in every instance's fleet record (kept equal to package.json by a test). */
export const ROOMCAST_VERSION = '0.1.0';
