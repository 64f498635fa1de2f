// Compile-time link between the zod schemas and the types generated from the API's OpenAPI
// document: every answer a schema accepts must be a value the document allows, so `tsc`
// fails when the API changes a field the console reads.
import type { z } from "zod";
import type { components } from "./api-schema";
import type * as s from "./schemas";

type Api = components["schemas"];
type Fits<Zod, Doc> = Zod extends Doc ? true : false;
type Assert<T extends true> = T;

export type SchemaChecks = [
  Assert<Fits<z.infer<typeof s.user>, Api["UserView"]>>,
  Assert<Fits<z.infer<typeof s.userPage>, Api["UserPage"]>>,
  Assert<Fits<z.infer<typeof s.accessKey>, Api["AccessKeyView"]>>,
  Assert<Fits<z.infer<typeof s.bedrockKey>, Api["BedrockKeyView"]>>,
  Assert<Fits<z.infer<typeof s.userDetail>, Api["UserDetail"]>>,
  Assert<Fits<z.infer<typeof s.issuedKey>, Api["IssuedKeyView"]>>,
  Assert<Fits<z.infer<typeof s.rotatedKey>, Api["RotatedKeyView"]>>,
  Assert<Fits<z.infer<typeof s.modelMapping>, Api["ModelMappingView"]>>,
  Assert<Fits<z.infer<typeof s.unmappedModel>, Api["UnmappedModelView"]>>,
  Assert<Fits<z.infer<typeof s.auditPage>, Api["AuditPage"]>>,
  Assert<Fits<z.infer<typeof s.usageReport>, Api["UsageReport"]>>,
  Assert<Fits<z.infer<typeof s.usageTop>, Api["UsageTop"]>>,
  Assert<Fits<z.infer<typeof s.loginAnswer>, Api["LoginResponse"]>>,
];
