// The SDK's version, sent as `User-Agent: taskgate-sdk/<version>`. A constant, not package.json
// read at runtime (the SDK runs in browsers, with no file system); test/sdk keeps the two equal.
export const SDK_VERSION = '0.1.0';
