package main

const usageText = `ecsctl - command-line client of ecsd (Huawei ECS API)

Usage:
  ecsctl [--credentials FILE] [--ca-cert FILE] [-o table|json] COMMAND [ARGS] [FLAGS]

Global flags (accepted before or after the command):
  --credentials FILE   JSON credentials file with access_key, secret_key,
                       project_id, user_id, endpoint and optional ca_cert
                       (default: $ECS_CREDENTIALS, else ./data/credentials.json,
                       which ecsd writes into its data dir on first start).
                       ECS_ENDPOINT, ECS_ACCESS_KEY, ECS_SECRET_KEY,
                       ECS_PROJECT_ID, ECS_USER_ID and ECS_CA_CERT override
                       its fields.
  --ca-cert FILE       for an https endpoint, trust the CA certificates in
                       this PEM file instead of the system's (for an ecsd
                       with a self-signed --tls-cert, that certificate)
                       (default: $ECS_CA_CERT, else the file's ca_cert,
                       relative to the credentials file)
  -o table|json        output format (default table)

Servers:
  server create --name N --image ID --flavor ID [--keypair K | --password-stdin]
                [--count N] [--vpc ID] [--subnet ID] [--volume-type T]
                [--disk-size GiB] [--az ZONE] [--wait]
  server list [--name N] [--status S] [--limit N] [--offset PAGE]
  server show ID
  server start ID... [--wait]
  server stop ID... [--hard] [--wait]
  server reboot ID... [--hard] [--wait]
  server delete ID... [--wait]
  server reinstall SERVER (--password-stdin | --keypair NAME) [--user-data FILE]
                [--user-id ID] [--with-stop] [--wait]
      Reinstalls the OS from the server's image. --password-stdin reads the
      new admin password from the first line of stdin; it is never echoed.
      --keypair needs a user id (--user-id, or user_id in the credentials).
      --with-stop lets the service stop a running server first.
      --user-data FILE (at most 32 KB) uses the v2 API, for images that run
      cloud-init: the file reaches the guest untouched, and the password or
      key pair becomes optional.
  server change-os SERVER --image ID (--password-stdin | --keypair NAME)
                [--user-data FILE] [--cloud-init] [--user-id ID] [--with-stop] [--wait]
      Gives the server a new system disk made from image ID, with the same
      rules as reinstall. --cloud-init (implied by --user-data) uses the v2
      API: the new image must run cloud-init.
  server reset-password SERVER --password-stdin
      Sets the admin password: online through the guest agent on a running
      server whose image has one, else on a stopped server's disk.
  server attach SERVER VOLUME [--device /dev/vdX] [--wait]
      Attaches a volume: a data disk to a running (hot-plug) or stopped
      server; --device /dev/vda makes it the system disk of a stopped
      server that has none.
  server detach SERVER VOLUME [--delete] [--wait]
      Detaches a volume: a data disk at any time, the system disk of a
      stopped server only. --delete deletes the volume once detached.

Volumes:
  volume create --size GB [--name N] [--volume-type T]
  volume list
  volume delete ID [--wait]          an available (detached) volume only

Key pairs:
  keypair create NAME [--out FILE]   private key to FILE (mode 0600) or stdout
  keypair import NAME --public-key-file FILE
  keypair list
  keypair show NAME
  keypair delete NAME

Catalog:
  image list
  image import                       importing is an operator action on the
                                     ecsd host: ecsd image import --data-dir DIR
                                     --name NAME [--kernel K --initrd I] FILE
  flavor list

Jobs:
  job show ID [--wait]

--wait follows the job on stderr (each change of its status and of its
servers' status and task_state) until it ends; exit status 0 on SUCCESS,
1 on FAIL (with its error_code and fail_reason).

Exit status: 0 success, 1 error or failed job, 2 usage error.
Errors read: ecsctl: <code>: <message> (request id <id>)
`
