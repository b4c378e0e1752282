import type { DynamicModule } from '@nestjs/common';
import { MulterModule, type MulterModuleAsyncOptions } from '@nestjs/platform-express';
import type { StorageEngine } from 'multer';

/**
 * Multipart uploads: multer (through @nestjs/platform-express) parses the form and hands each file, as a
 * stream, to the storage engine given here; nothing is buffered. Routes take it with FileInterceptor.
 */
export { FileInterceptor } from '@nestjs/platform-express';

/** A storage engine: receives each uploaded file as a stream and says where it put it. */
export type UploadStorageEngine = StorageEngine;

/**
 * An uploaded file as multer describes it: the storage engine receives it with its bytes in `stream`, and
 * the route handler (`@UploadedFile()`) with what the engine reported added.
 */
export type UploadedFileInfo = Express.Multer.File;

/** Registers the options every FileInterceptor of the importing module uses (storage engine, limits). */
export function uploadsModule(options: MulterModuleAsyncOptions): DynamicModule {
  return MulterModule.registerAsync(options);
}
