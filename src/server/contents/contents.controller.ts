import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, UploadedFile, UseGuards, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { AdminGuard } from '../auth/admin.guard.js';
import { ContentResponseDto, CreateContentDto } from './content.dto.js';
import { ContentsService } from './contents.service.js';
import type { StoredUpload } from './upload-storage-engine.js';

/** Admin API for contents. Uploads are streamed by ContentUploadEngine (see ContentsModule). */
@Controller('api/contents')
@UseGuards(AdminGuard)
export class ContentsController {
  constructor(private readonly contents: ContentsService) {}

  @Post()
  @UseInterceptors(FileInterceptor('file'))
  create(@UploadedFile() file: StoredUpload | undefined, @Body() dto: CreateContentDto): Promise<ContentResponseDto> {
    return this.contents.create(file, dto);
  }

  @Get()
  list(): Promise<ContentResponseDto[]> {
    return this.contents.list();
  }

  @Get(':id')
  get(@Param('id', ParseUUIDPipe) id: string): Promise<ContentResponseDto> {
    return this.contents.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id', ParseUUIDPipe) id: string): Promise<void> {
    return this.contents.remove(id);
  }
}
