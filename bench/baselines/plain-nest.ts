/*
 * The baseline of issue 20: what a team would write without DCX. A plain NestJS app on the default HTTP adapter
 * (@nestjs/platform-express) that records one row per download with TypeORM (repository.insert, its own
 * transaction per request, no batching) and streams the file (StreamableFile); no crypto, no ZIP, no plug-in data.
 * Started by `npm run bench` as its own process: PORT, DATABASE_URL, FILES_DIR.
 */
import 'reflect-metadata';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Controller, Get, Injectable, Module, NotFoundException, Param, Req, StreamableFile } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import type { Request } from 'express';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, Repository } from 'typeorm';

const FILES_DIR = process.env.FILES_DIR ?? '.';

@Entity('downloads')
class Download {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column('text', { name: 'file_name' })
  fileName: string;

  @Column('text', { name: 'requester_ip' })
  requesterIp: string;

  @CreateDateColumn({ name: 'downloaded_at', type: 'timestamptz' })
  downloadedAt: Date;
}

@Injectable()
class DownloadsService {
  constructor(@InjectRepository(Download) private readonly downloads: Repository<Download>) {}

  async download(name: string, requesterIp: string): Promise<StreamableFile> {
    const path = join(FILES_DIR, basename(name));
    const size = await stat(path).then(
      (s) => s.size,
      () => {
        throw new NotFoundException(`no file ${name}`);
      },
    );
    await this.downloads.insert({ fileName: name, requesterIp });
    return new StreamableFile(createReadStream(path), { type: 'application/octet-stream', length: size });
  }
}

@Controller('files')
class DownloadsController {
  constructor(private readonly downloads: DownloadsService) {}

  @Get(':name')
  download(@Param('name') name: string, @Req() req: Request): Promise<StreamableFile> {
    return this.downloads.download(name, req.ip ?? '');
  }
}

@Module({
  imports: [
    // The pool size DCX uses (10), so that the two compare on the same database budget.
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, entities: [Download], synchronize: true, extra: { max: 10 } }),
    TypeOrmModule.forFeature([Download]),
  ],
  controllers: [DownloadsController],
  providers: [DownloadsService],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
console.log(`plain-nest listening on ${await app.getUrl()}`);
