import type { Observable } from 'rxjs';
import type {
  BytesName,
  BytesResult,
  ByteTransfer,
  CallOptions,
  InputOf,
  KeyledgerApi,
  UnaryName,
  WatchItem,
} from './keyledgerApi.js';
import type { OutputOf } from './operations.js';

/**
 * What both implementations of KeyledgerApi share: the named conveniences (encrypt, decrypt and
 * their streams) in terms of the generic calls each implements its own way (in process, or over
 * HTTPS).
 */
export abstract class OperationsApi implements KeyledgerApi {
  abstract call<N extends UnaryName>(name: N, input: InputOf<N>, options?: CallOptions): Promise<OutputOf<N>>;
  abstract stream<N extends BytesName>(name: N, input: InputOf<N>, options?: CallOptions): ByteTransfer<N>;
  abstract events$(filter?: InputOf<'watch'>): Observable<WatchItem>;
  abstract close(): Promise<void>;
  /** A bytes operation on bytes held in memory. */
  protected abstract bytes<N extends 'encrypt' | 'decrypt'>(
    name: N,
    input: InputOf<N>,
    data: Uint8Array,
    options: CallOptions | undefined,
  ): Promise<BytesResult<N>>;

  encrypt(
    input: InputOf<'encrypt'>,
    data: Uint8Array,
    options?: CallOptions,
  ): Promise<BytesResult<'encrypt'>> {
    return this.bytes('encrypt', input, data, options);
  }

  decrypt(
    input: InputOf<'decrypt'>,
    data: Uint8Array,
    options?: CallOptions,
  ): Promise<BytesResult<'decrypt'>> {
    return this.bytes('decrypt', input, data, options);
  }

  encryptStream(input: InputOf<'encrypt'>, options?: CallOptions): ByteTransfer<'encrypt'> {
    return this.stream('encrypt', input, options);
  }

  decryptStream(input: InputOf<'decrypt'>, options?: CallOptions): ByteTransfer<'decrypt'> {
    return this.stream('decrypt', input, options);
  }
}
