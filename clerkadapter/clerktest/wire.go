package clerktest

import "encoding/json"

// The types below are the JSON the Backend API serves, after the schemas
// of clerk/openapi-specs bapi/2025-04-10.yml (components.schemas.User,
// EmailAddress, PhoneNumber, Web3Wallet, ExternalAccountWithVerification).
// Every property the schemas list as required is present, also those the
// SDK's structs (clerk-sdk-go v2.4.2 clerk.User) do not decode, such as
// passkeys, enterprise_accounts, mfa_enabled_at and mfa_disabled_at.

type wireVerification struct {
	Object   string `json:"object"`
	Status   string `json:"status"`
	Strategy string `json:"strategy"`
	Attempts *int64 `json:"attempts"`
	ExpireAt *int64 `json:"expire_at"`
}

type wireEmail struct {
	ID                   string            `json:"id"`
	Object               string            `json:"object"`
	EmailAddress         string            `json:"email_address"`
	Reserved             bool              `json:"reserved"`
	Verification         *wireVerification `json:"verification"`
	LinkedTo             []any             `json:"linked_to"`
	MatchesSSOConnection bool              `json:"matches_sso_connection"`
	CreatedAt            int64             `json:"created_at"`
	UpdatedAt            int64             `json:"updated_at"`
}

type wirePhone struct {
	ID                      string            `json:"id"`
	Object                  string            `json:"object"`
	PhoneNumber             string            `json:"phone_number"`
	ReservedForSecondFactor bool              `json:"reserved_for_second_factor"`
	DefaultSecondFactor     bool              `json:"default_second_factor"`
	Reserved                bool              `json:"reserved"`
	Verification            *wireVerification `json:"verification"`
	LinkedTo                []any             `json:"linked_to"`
	BackupCodes             []string          `json:"backup_codes"`
	CreatedAt               int64             `json:"created_at"`
	UpdatedAt               int64             `json:"updated_at"`
}

type wireWallet struct {
	ID           string            `json:"id"`
	Object       string            `json:"object"`
	Web3Wallet   string            `json:"web3_wallet"`
	Verification *wireVerification `json:"verification"`
	CreatedAt    int64             `json:"created_at"`
	UpdatedAt    int64             `json:"updated_at"`
}

type wireExternalAccount struct {
	Object               string            `json:"object"`
	ID                   string            `json:"id"`
	Provider             string            `json:"provider"`
	IdentificationID     string            `json:"identification_id"`
	ProviderUserID       string            `json:"provider_user_id"`
	ApprovedScopes       string            `json:"approved_scopes"`
	EmailAddress         string            `json:"email_address"`
	EmailAddressVerified *bool             `json:"email_address_verified"`
	FirstName            string            `json:"first_name"`
	LastName             string            `json:"last_name"`
	AvatarURL            string            `json:"avatar_url"`
	ImageURL             *string           `json:"image_url"`
	Username             *string           `json:"username"`
	PhoneNumber          *string           `json:"phone_number"`
	PublicMetadata       json.RawMessage   `json:"public_metadata"`
	Label                *string           `json:"label"`
	CreatedAt            int64             `json:"created_at"`
	UpdatedAt            int64             `json:"updated_at"`
	Verification         *wireVerification `json:"verification"`
}

type wireUser struct {
	ID                            string                `json:"id"`
	Object                        string                `json:"object"`
	ExternalID                    *string               `json:"external_id"`
	PrimaryEmailAddressID         *string               `json:"primary_email_address_id"`
	PrimaryPhoneNumberID          *string               `json:"primary_phone_number_id"`
	PrimaryWeb3WalletID           *string               `json:"primary_web3_wallet_id"`
	Username                      *string               `json:"username"`
	FirstName                     *string               `json:"first_name"`
	LastName                      *string               `json:"last_name"`
	Locale                        *string               `json:"locale"`
	ProfileImageURL               string                `json:"profile_image_url"`
	ImageURL                      string                `json:"image_url"`
	HasImage                      bool                  `json:"has_image"`
	PublicMetadata                json.RawMessage       `json:"public_metadata"`
	PrivateMetadata               json.RawMessage       `json:"private_metadata"`
	UnsafeMetadata                json.RawMessage       `json:"unsafe_metadata"`
	EmailAddresses                []wireEmail           `json:"email_addresses"`
	PhoneNumbers                  []wirePhone           `json:"phone_numbers"`
	Web3Wallets                   []wireWallet          `json:"web3_wallets"`
	Passkeys                      []any                 `json:"passkeys"`
	PasswordEnabled               bool                  `json:"password_enabled"`
	TwoFactorEnabled              bool                  `json:"two_factor_enabled"`
	TOTPEnabled                   bool                  `json:"totp_enabled"`
	BackupCodeEnabled             bool                  `json:"backup_code_enabled"`
	MFAEnabledAt                  *int64                `json:"mfa_enabled_at"`
	MFADisabledAt                 *int64                `json:"mfa_disabled_at"`
	PasswordLastUpdatedAt         *int64                `json:"password_last_updated_at"`
	ExternalAccounts              []wireExternalAccount `json:"external_accounts"`
	SAMLAccounts                  []any                 `json:"saml_accounts"`
	EnterpriseAccounts            []any                 `json:"enterprise_accounts"`
	LastSignInAt                  *int64                `json:"last_sign_in_at"`
	Banned                        bool                  `json:"banned"`
	Locked                        bool                  `json:"locked"`
	Deprovisioned                 bool                  `json:"deprovisioned"`
	LockoutExpiresInSeconds       *int64                `json:"lockout_expires_in_seconds"`
	VerificationAttemptsRemaining *int64                `json:"verification_attempts_remaining"`
	UpdatedAt                     int64                 `json:"updated_at"`
	CreatedAt                     int64                 `json:"created_at"`
	DeleteSelfEnabled             bool                  `json:"delete_self_enabled"`
	CreateOrganizationEnabled     bool                  `json:"create_organization_enabled"`
	CreateOrganizationsLimit      *int                  `json:"create_organizations_limit"`
	LastActiveAt                  *int64                `json:"last_active_at"`
	LegalAcceptedAt               *int64                `json:"legal_accepted_at"`
	BypassClientTrust             bool                  `json:"bypass_client_trust"`
}

// verification describes how an identification was verified: by the
// Backend API ("admin") when verified, else not yet (status
// "unverified"); a reserved identification has none.
func verification(e identification, code string) *wireVerification {
	switch {
	case e.reserved:
		return nil
	case e.verified:
		return &wireVerification{Object: "verification_admin", Status: "verified", Strategy: "admin"}
	default:
		return &wireVerification{Object: "verification_otp", Status: "unverified", Strategy: code}
	}
}

// wire converts r to the JSON the Backend API serves.
func (r *record) wire() *wireUser {
	u := &wireUser{
		ID:                        r.id,
		Object:                    "user",
		ExternalID:                ptrString(r.externalID),
		PrimaryEmailAddressID:     ptrString(r.primaryEmailID),
		PrimaryPhoneNumberID:      ptrString(r.primaryPhoneID),
		PrimaryWeb3WalletID:       ptrString(r.primaryWalletID),
		Username:                  ptrString(r.username),
		FirstName:                 ptrString(r.firstName),
		LastName:                  ptrString(r.lastName),
		Locale:                    ptrString(r.locale),
		ProfileImageURL:           r.imageURL,
		ImageURL:                  r.imageURL,
		HasImage:                  r.hasImage,
		PublicMetadata:            rawObject(r.public),
		PrivateMetadata:           rawObject(r.private),
		UnsafeMetadata:            rawObject(r.unsafe),
		EmailAddresses:            []wireEmail{},
		PhoneNumbers:              []wirePhone{},
		Web3Wallets:               []wireWallet{},
		Passkeys:                  []any{},
		PasswordEnabled:           r.passwordEnabled,
		TwoFactorEnabled:          r.totp || r.backupCodes,
		TOTPEnabled:               r.totp,
		BackupCodeEnabled:         r.backupCodes,
		MFAEnabledAt:              ptrMillis(r.mfaEnabledAt),
		MFADisabledAt:             ptrMillis(r.mfaDisabledAt),
		PasswordLastUpdatedAt:     ptrMillis(r.passwordUpdated),
		ExternalAccounts:          []wireExternalAccount{},
		SAMLAccounts:              []any{},
		EnterpriseAccounts:        []any{},
		LastSignInAt:              ptrMillis(r.lastSignInAt),
		Banned:                    r.banned,
		Locked:                    r.locked,
		UpdatedAt:                 r.updatedAt,
		CreatedAt:                 r.createdAt,
		DeleteSelfEnabled:         r.deleteSelf,
		CreateOrganizationEnabled: r.createOrgs,
		CreateOrganizationsLimit:  r.createOrgsLimit,
		LastActiveAt:              ptrMillis(r.lastActiveAt),
		LegalAcceptedAt:           ptrMillis(r.legalAcceptedAt),
		BypassClientTrust:         r.bypassTrust,
	}
	for _, e := range r.emails {
		u.EmailAddresses = append(u.EmailAddresses, wireEmail{
			ID: e.id, Object: "email_address", EmailAddress: e.value, Reserved: e.reserved,
			Verification: verification(e, "email_code"), LinkedTo: []any{},
			CreatedAt: e.createdAt, UpdatedAt: e.createdAt,
		})
	}
	for _, p := range r.phones {
		u.PhoneNumbers = append(u.PhoneNumbers, wirePhone{
			ID: p.id, Object: "phone_number", PhoneNumber: p.value, Reserved: p.reserved,
			Verification: verification(p, "phone_code"), LinkedTo: []any{},
			CreatedAt: p.createdAt, UpdatedAt: p.createdAt,
		})
	}
	for _, w := range r.wallets {
		u.Web3Wallets = append(u.Web3Wallets, wireWallet{
			ID: w.id, Object: "web3_wallet", Web3Wallet: w.value,
			Verification: verification(w, "web3_metamask_signature"),
			CreatedAt:    w.createdAt, UpdatedAt: w.createdAt,
		})
	}
	for _, a := range r.externalAccounts {
		u.ExternalAccounts = append(u.ExternalAccounts, wireExternalAccount{
			Object: "external_account", ID: a.id, Provider: a.provider, IdentificationID: a.identID,
			ProviderUserID: a.providerUserID, PublicMetadata: json.RawMessage("{}"),
			CreatedAt: a.createdAt, UpdatedAt: a.createdAt,
			Verification: &wireVerification{Object: "verification_oauth", Status: "verified", Strategy: a.provider},
		})
	}
	return u
}

// rawObject encodes m as a JSON object ("{}" when empty).
func rawObject(m map[string]any) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("{}")
	}
	b, err := json.Marshal(m)
	if err != nil { // stored metadata always came from JSON
		panic(err)
	}
	return b
}
