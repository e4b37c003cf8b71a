/** Types of bundleExternals.mjs (plain JS: build-cli.mjs runs without a TypeScript loader). */
export declare const BUNDLE_EXTERNALS: string[];
