import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { PAGE } from '../../graphql/common.graphql.js';
import { InUseError, NotFoundError, ValidationError } from '../../errors.js';
import { fileCursor, pageOf, type FileInfo } from './file.service.js';

export const FileOrderEnum = builder.enumType('FileOrder', {
  description: 'The order of the files list.',
  values: {
    NAME: { description: 'By name (relative path), ascending, in code-point order.' },
    NEWEST: { description: 'Most recently modified first (then by name).' },
  } as const,
});

export const FileRef = builder.objectRef<FileInfo>('File').implement({
  description:
    "A file in your workspace's folder under the files root (SLUICE_FILES_ROOT), which connectors may read and write. " +
    'Files arrive by `POST /files/<name>` (or an operator placing them there) and go by deleteFile.',
  fields: (t) => ({
    name: t.exposeString('name', {
      nullable: false,
      description: 'The path relative to your workspace folder (`people.csv`, `in/2026/orders.csv`): what a connector config and deleteFile take.',
    }),
    path: t.exposeString('path', { nullable: false, description: 'The absolute path on the server.' }),
    size: t.field({ type: 'SafeInt', nullable: false, description: 'Size in bytes.', resolve: (f) => f.size }),
    modifiedAt: t.field({ type: 'DateTime', nullable: false, description: 'When the file was last written.', resolve: (f) => f.modifiedAt }),
  }),
});

builder.queryFields((t) => ({
  files: t.connection(
    {
      type: FileRef,
      description:
        "The regular files of your workspace's folder, its sub-folders included (symlinks are not followed; uploads in progress are hidden). " +
        "The operator's extra roots (SLUICE_FILES_EXTRA_ROOTS) are not listed.",
      args: { orderBy: t.arg({ type: FileOrderEnum, defaultValue: 'NAME', description: 'NAME (default) or NEWEST.' }) },
      resolve: async (_r, args, ctx) => {
        const order = args.orderBy ?? 'NAME';
        const all = await ctx.services.files.list(order);
        const conn = await resolveCursorConnection({ args, ...PAGE, toCursor: fileCursor }, (page: ResolveCursorConnectionArgs) => pageOf(all, order, page));
        return { ...conn, totalCount: all.length };
      },
    },
    {
      name: 'FileConnection',
      description: 'A page of files.',
      fields: (c) => ({
        totalCount: c.int({
          description: 'How many files the workspace folder holds.',
          resolve: (conn) => (conn as unknown as { totalCount: number }).totalCount,
        }),
      }),
    },
    { name: 'FileEdge', description: 'A file and its cursor.' },
  ),
}));

const DeleteFileInput = builder.inputType('DeleteFileInput', {
  description: 'Which file to delete.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'The name as the files list shows it (relative to your workspace folder).' }),
  }),
});

builder.mutationFields((t) => ({
  deleteFile: t.field({
    type: FileRef,
    description:
      'Deletes a file of your workspace folder (and folders left empty by it). ' +
      "Refused with IN_USE while a connector's config names the file (`path`, or a json source's local `url`); " +
      'a name outside the folder is VALIDATION_FAILED, a missing file NOT_FOUND.',
    args: { input: t.arg({ type: DeleteFileInput, required: true, description: 'The file to delete.' }) },
    errors: {
      types: [ValidationError, NotFoundError, InUseError],
      dataField: { name: 'file', description: 'The deleted file, as it was.' },
    },
    resolve: (_r, { input }, ctx) => ctx.services.files.delete(input.name),
  }),
}));
